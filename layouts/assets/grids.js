/* Each AG Grid mounts in a main-thread task of its own, one grid after the other.

A grid's mount (AG Grid building its services and measuring its theme's sizes in the page) costs 80-150 ms of CPU
on a first visit, and React mounts every grid of a callback answer in one commit: the city page's four grids were
one task of 185 ms of CPU, Harvests' grid and the answer around it 150 ms (Chrome trace of the demo). Here the
grid component that Dash renders (window.dash_ag_grid.AgGrid, looked up at each render) is wrapped: it first
renders an empty box of the grid's size, and takes its turn to mount the real grid in a fresh task (setTimeout 0),
after the previous grid has mounted (its `.ag-root-wrapper` is in the page). Waiting for the previous mount, not
only for a new task, matters on a first visit: until AG Grid's lazily loaded code has arrived every grid waits for
it, and they would all mount together when it does. Graphs do the same in graphs.js.
*/
(function () {
    "use strict";
    const lib = window.dash_ag_grid;
    if (!lib || !lib.AgGrid || !window.React) {
        return;
    }
    const React = window.React;
    const Grid = lib.AgGrid;
    const MOUNT_WAIT_MS = 3000; // a grid that has not mounted by then does not hold the others back

    let turn = Promise.resolve();

    function nextTask() {
        return new Promise((resolve) => setTimeout(resolve, 0));
    }

    // resolves when the grid with this id has mounted, has been taken off the page (`gone()`), or MOUNT_WAIT_MS
    // have passed. (Its element is missing for a while on a first visit: the grid renders nothing until AG Grid's
    // lazily loaded code is there.)
    function mounted(id, gone) {
        return new Promise((resolve) => {
            const done = () => {
                const el = id ? document.getElementById(id) : null;
                return gone() || !id || !!(el && el.querySelector(".ag-root-wrapper"));
            };
            if (done()) {
                resolve();
                return;
            }
            const observer = new MutationObserver(() => {
                if (done()) {
                    finish();
                }
            });
            const timer = setTimeout(() => finish(), MOUNT_WAIT_MS);
            function finish() {
                observer.disconnect();
                clearTimeout(timer);
                resolve();
            }
            observer.observe(document.body, {childList: true, subtree: true});
        });
    }

    function DeferredGrid(props) {
        const [ready, setReady] = React.useState(false);
        React.useEffect(() => {
            let live = true;
            turn = turn.then(nextTask).then(() => {
                if (!live) {
                    return null;
                }
                setReady(true);
                return mounted(props.id, () => !live);
            });
            return () => {
                live = false;
            };
        }, []);
        if (ready) {
            return React.createElement(Grid, props);
        }
        // the box the grid will fill (same id, class and size), so nothing below it moves when it mounts
        return React.createElement("div", {id: props.id, className: props.className, style: props.style});
    }

    // Dash reads the component's static fields (propTypes, defaultProps, persistence settings)
    for (const name of Object.getOwnPropertyNames(Grid)) {
        if (!["length", "name", "prototype", "caller", "arguments"].includes(name)) {
            Object.defineProperty(DeferredGrid, name, Object.getOwnPropertyDescriptor(Grid, name));
        }
    }
    // the library's exports are read-only getters: Dash gets the wrapped grid from a copy of them
    window.dash_ag_grid = Object.assign({}, lib, {AgGrid: DeferredGrid});
})();
