/* Each graph draws in a main-thread task of its own.

dcc.Graph calls Plotly.react in a promise callback of React's commit, so a page whose callback answer holds
graphs and a grid (Compare, Harvests, the city page) drew them all in one task of 400-900 ms of CPU (Chrome
trace of the demo): no paint, no click in between. Here Plotly.react first waits for a fresh task
(setTimeout 0, first come first drawn), so the grid's mount and each graph's draw are separate tasks; a graph
taken off the page before its turn is not drawn. plotly.js is loaded only when a page first shows a graph, so
the wrapper is put on it as it sets window.Plotly (or at once, if it is already there).

A resize to the size a graph already has draws nothing. dcc.Graph watches its box and calls Plotly.Plots.resize
when the box is first observed, right after the graph mounts: plotly then drew every graph of the demo a second
time at the same size (a relayout to {autosize: true}: the overview matrix, Compare's two charts, the Harvests
timeline, the city page's charts). Here the resize goes ahead only when the graph's box (what plotly's autosize
reads) differs from the size it was drawn at, or the graph has not been drawn yet by the time it is asked.
*/
(function () {
    "use strict";
    const DEFERRED = Symbol("draws deferred");

    function deferDraws(plotly) {
        if (!plotly || typeof plotly.react !== "function" || plotly[DEFERRED]) {
            return plotly;
        }
        const react = plotly.react;
        plotly.react = function (gd, ...rest) {
            const first = window.maturityFirst; // first.js: the page's main content before the rest
            const box = typeof gd === "string" ? document.getElementById(gd) : gd;
            return (first ? first.after(box) : Promise.resolve()).then(() => new Promise((resolve) => setTimeout(resolve, 0))).then(() => {
                const el = typeof gd === "string" ? document.getElementById(gd) : gd;
                return el && el.isConnected ? react.call(plotly, gd, ...rest) : el;
            });
        };
        const resize = plotly.Plots && plotly.Plots.resize;
        if (typeof resize === "function") {
            plotly.Plots.resize = function (gd, ...rest) {
                const el = typeof gd === "string" ? document.getElementById(gd) : gd;
                return drawnAtItsSize(el) ? Promise.resolve(el) : resize.call(plotly.Plots, gd, ...rest);
            };
        }
        plotly[DEFERRED] = true;
        return plotly;
    }

    // plotly's autosize gives a graph its box's computed width and height (Plots.plotAutoSize)
    function drawnAtItsSize(el) {
        const drawn = el && el._fullLayout;
        if (!drawn || !el.isConnected) {
            return false;
        }
        const box = window.getComputedStyle(el);
        return Math.round(parseFloat(box.width)) === drawn.width && Math.round(parseFloat(box.height)) === drawn.height;
    }

    let current = deferDraws(window.Plotly);
    Object.defineProperty(window, "Plotly", {
        configurable: true,
        enumerable: true,
        get: () => current,
        set: (value) => {
            current = deferDraws(value);
        },
    });
})();
