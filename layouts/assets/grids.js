/* Each AG Grid mounts in a main-thread task of its own, one grid after the other; AG Grid's code is loaded by the
first grid of a page whose index left it out.

A grid's mount (AG Grid building its services and measuring its theme's sizes in the page) costs 80-150 ms of CPU
on a first visit, and React mounts every grid of a callback answer in one commit: the city page's four grids were
one task of 185 ms of CPU, Harvests' grid and the answer around it 150 ms (Chrome trace of the demo). Here the
grid component that Dash renders (window.dash_ag_grid.AgGrid, looked up at each render) is wrapped: it first
renders an empty box of the grid's size, and takes its turn to mount the real grid in a fresh task (setTimeout 0),
after the previous grid has mounted (its `.ag-root-wrapper` is in the page). Waiting for the previous mount, not
only for a new task, matters on a first visit: until AG Grid's lazily loaded code has arrived every grid waits for
it, and they would all mount together when it does. Graphs do the same in graphs.js.

A grid given its rows (client-side row model) outside the page's main content (first.js) then gets them in a task of
its own, once it has mounted: it mounts without them (AG Grid's "loading" overlay for that task), and its rows are
drawn in the next turn. A grid's mount alone (its services, theme and columns) and the drawing of its rows were each
up to ~half of the one task they made: on the city page that task was its longest, 200-420 ms of CPU for the WWC
grid (whose wrapped cells are measured as they are drawn) and 170-350 ms for the departments grid on this 2-core VM
(Chrome trace of the demo, 2026-12-01); split, its parts were at most ~140-290 ms (the first grid of a page pays for
AG Grid's first run) and ~80-210 ms. The main content's grid (Harvests' run log) mounts with its rows, as before: its
first rows are the page's main content.

A page that draws no grid (the overview, Methodology) is served without AG Grid's 1.3 MB bundle (maturity/app.py:
its evaluation cost ~40 ms of CPU before the page's content on a first visit); its index names the bundle in a
prefetch link instead. Should such a page open another page in place (a link of the header), the first grid of
that page loads the bundle, and the bundle's `window.dash_ag_grid = …` lands in the setter below.
*/
(function () {
    "use strict";
    const React = window.React;
    if (!React) {
        return;
    }
    const LIB_LINK_ID = "dash-ag-grid-lib"; // maturity/app.py: the bundle's address on a page served without it
    const MOUNT_WAIT_MS = 3000; // a grid that has not mounted by then does not hold the others back

    let Grid = null; // the library's grid, once its bundle has run
    let turn = Promise.resolve();
    let libReady = null; // resolves when the bundle has run (a promise only on a page served without it)

    function nextTask() {
        return new Promise((resolve) => setTimeout(resolve, 0));
    }

    // resolves when the grid with this id shows `what` (its root: mounted; a row or its "no rows" overlay: drawn), has
    // been taken off the page (`gone()`), or MOUNT_WAIT_MS have passed. (Its element is missing for a while on a first
    // visit: the grid renders nothing until AG Grid's lazily loaded code is there.)
    function shows(id, what, gone) {
        return new Promise((resolve) => {
            const done = () => {
                const el = id ? document.getElementById(id) : null;
                return gone() || !id || !!(el && el.querySelector(what));
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

    // the bundle's script, added once, when the first grid of a page served without it takes its turn
    function loadLib() {
        if (Grid || document.querySelector("script[data-dash-ag-grid-lib]")) {
            return libReady || Promise.resolve();
        }
        const link = document.getElementById(LIB_LINK_ID);
        const script = document.createElement("script");
        script.src = link ? link.href : "";
        script.setAttribute("data-dash-ag-grid-lib", "");
        document.head.appendChild(script);
        return libReady;
    }

    // a grid given its rows (client-side row model) that is not the page's main content (first.js)
    function rowsLater(props, el) {
        return Array.isArray(props.rowData) && (props.rowModelType || "clientSide") === "clientSide" &&
            !(el && el.closest && el.closest(".shows-first"));
    }

    function DeferredGrid(props) {
        // 0: the empty box; 1: the grid without its rows (AG Grid's "loading" overlay); 2: the grid with its rows
        const [stage, setStage] = React.useState(0);
        const box = React.useRef(null);
        React.useEffect(() => {
            let live = true;
            const gone = () => !live;
            const el = box.current;
            const split = rowsLater(props, el);
            // a grid that is not the page's main content joins the queue once that has been painted (first.js)
            const first = window.maturityFirst;
            (first ? first.after(el) : Promise.resolve()).then(() => {
                turn = turn.then(loadLib).then(nextTask).then(() => {
                    if (!live) {
                        return null;
                    }
                    setStage(split ? 1 : 2);
                    const root = shows(props.id, ".ag-root-wrapper", gone);
                    if (!split) {
                        return root;
                    }
                    // its rows in a task of their own, after the mount: drawing them (and measuring wrapped cells'
                    // heights) was as long again as the mount on the city page's WWC grid
                    return root.then(nextTask).then(() => {
                        if (!live) {
                            return null;
                        }
                        setStage(2);
                        return shows(props.id, ".ag-row, .ag-overlay-no-rows-wrapper", gone);
                    });
                });
            });
            return () => {
                live = false;
            };
        }, []);
        if (stage && Grid) {
            return React.createElement(Grid, stage === 1 ? Object.assign({}, props, {rowData: undefined}) : props);
        }
        // the box the grid will fill (same class and size), so nothing below it moves when it mounts. Not its id: the
        // id names the grid itself, so a script (or a test) that finds the element by id does not get a box that is
        // about to be replaced
        return React.createElement("div", {ref: box, "data-grid-box": props.id, className: props.className,
            style: props.style});
    }
    DeferredGrid.dashRenderType = true; // as the library's grid: Dash passes it how it was rendered

    // the library's exports are read-only getters: Dash gets the wrapped grid from a copy of them
    function wrap(lib) {
        Grid = lib.AgGrid;
        // Dash reads the component's static fields (propTypes, defaultProps, persistence settings)
        for (const name of Object.getOwnPropertyNames(Grid)) {
            if (!["length", "name", "prototype", "caller", "arguments"].includes(name)) {
                Object.defineProperty(DeferredGrid, name, Object.getOwnPropertyDescriptor(Grid, name));
            }
        }
        return Object.assign({}, lib, {AgGrid: DeferredGrid});
    }

    const lib = window.dash_ag_grid;
    if (lib && lib.AgGrid) {
        window.dash_ag_grid = wrap(lib);
        return;
    }
    let exported = {AgGrid: DeferredGrid};
    let loaded;
    libReady = new Promise((resolve) => {
        loaded = resolve;
    });
    Object.defineProperty(window, "dash_ag_grid", {
        configurable: true,
        enumerable: true,
        get: () => exported,
        set: (value) => {
            if (value && value.AgGrid && value.AgGrid !== DeferredGrid) {
                exported = wrap(value);
                loaded();
            }
        },
    });
})();
