/* A page's main content is drawn first: its other graphs and grids wait until it has been painted.

Graphs and grids draw in tasks of their own, first come first drawn (graphs.js, grids.js). On Harvests that put the
timeline's draw (~130 ms of CPU on a first visit) between the grid's mount and its first rows, the page's main
content: the rows came ~1.5 s into a first visit of the demo, 900 ms of it main-thread CPU (Chrome trace). A page
marks its main content with the class `shows-first` (layouts/_components.py `first`); graphs.js and grids.js ask
`window.maturityFirst.after(el)` before drawing anything outside it. It resolves:
- at once for an element inside a `shows-first` box, or when the page has none (other pages draw as before);
- once every `shows-first` box holds a grid row, a grid's "no rows" overlay or a drawn graph (or what its
  `data-shown` selector names: the city page's cards), and a frame has been painted with it (requestAnimationFrame
  runs just before the paint; a task posted from it runs after);
- after WAIT_MS at the latest, so nothing is held back by main content that never comes (an error, an empty page).
*/
(function () {
    "use strict";
    const SHOWN = ".ag-row, .ag-overlay-no-rows-wrapper, .main-svg";
    const WAIT_MS = 3000;

    function pending() {
        return Array.from(document.querySelectorAll(".shows-first"))
            .filter((box) => !box.querySelector(box.dataset.shown || SHOWN));
    }

    function afterPaint() {
        return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    }

    function after(el) {
        if ((el && el.closest && el.closest(".shows-first")) || !document.querySelector(".shows-first")) {
            return Promise.resolve();
        }
        if (!pending().length) {
            return afterPaint();
        }
        return new Promise((resolve) => {
            const observer = new MutationObserver(() => {
                if (!pending().length) {
                    finish();
                }
            });
            const timer = setTimeout(finish, WAIT_MS);
            function finish() {
                observer.disconnect();
                clearTimeout(timer);
                resolve();
            }
            observer.observe(document.body, {childList: true, subtree: true});
        }).then(afterPaint);
    }

    window.maturityFirst = {after};
})();
