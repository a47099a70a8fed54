"""`giftcast loadtest`: a simulated platform driving a giftcast server, then checking its money.

Modules, one noun each:

    scenario     the knobs (flags, TOML files, their bounds) and the loopback guard  [pure]
    model        Zipf popularity, the gift mix, the client-side rate limiter          [pure]
    stats        latency histograms, percentiles, per-second figures                 [pure]
    records      acknowledged gifts and sampled streams, as the verifier reads them  [pure]
    http         a small HTTP/1.1 client over asyncio and the calls the run makes
    serverproc   a `giftcast serve` of our own on a temporary database
    clients      one simulated viewer, sender or overlay: a socket and its loop
    worker       a worker process: its share of the clients, per-second figures to a pipe
    progress     the live line on the terminal
    report       the summary table, the JSON report, the HTML report with SVG charts
    verify       the run checked against the server's ledger                          [pure]
    coordinator  set-up, workers, the clock, the end of the run, verification, reports
    main         the command line

It talks to the server over the wire only (HTTP and WebSockets, as any client would) and
imports no other part of `server`; `tests/test_layering.py` holds it to that.
"""
