/* Each graph draws in a main-thread task of its own.

dcc.Graph calls Plotly.react in a promise callback of React's commit, so a page whose callback answer holds
graphs and a grid (Compare, Harvests, the city page) drew them all in one task of 400-900 ms of CPU (Chrome
trace of the demo): no paint, no click in between. Here Plotly.react first waits for a fresh task
(setTimeout 0, first come first drawn), so the grid's mount and each graph's draw are separate tasks; a graph
taken off the page before its turn is not drawn. plotly.js is loaded only when a page first shows a graph, so
the wrapper is put on it as it sets window.Plotly (or at once, if it is already there).
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
            return new Promise((resolve) => setTimeout(resolve, 0)).then(() => {
                const el = typeof gd === "string" ? document.getElementById(gd) : gd;
                return el && el.isConnected ? react.call(plotly, gd, ...rest) : el;
            });
        };
        plotly[DEFERRED] = true;
        return plotly;
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
