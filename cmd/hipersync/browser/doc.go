// Package browser holds the web console's browser test: Debian's Chromium,
// driven by chromedp, against the dev run (the real services, an embedded
// NATS and hiper-sim). It writes a screenshot of each page to
// bin/screenshots/. Without a chromium binary (`.ci/run` installs one) the
// test is skipped, saying so.
package browser
