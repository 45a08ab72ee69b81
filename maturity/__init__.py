"""The runtime of the city data-maturity monitor: config (`settings`), the harvest/score `pipeline`, the
`scheduler`, `exports`, the bundled `demo` history, the Dash `app` and the `cli` (`maturity` command)."""
