// Package ui serves the status page for operators at /ui/ on the
// management listener: executions with filters, dead letters with replay,
// runners, routes with their match counts and the loaded configuration.
//
// The page is server-rendered (html/template, so every value from events
// and actions is escaped) with one small embedded script that refreshes
// the live part of a page by polling; no asset comes from elsewhere. It
// reads everything through Source, its data port: the package knows
// nothing of the engine, the store or the cluster (core/ui/uisource is
// the adapter over them).
//
// Access needs the API key, typed once into a login form; the browser
// then holds a random session token (never the key) in an HttpOnly,
// SameSite=Strict cookie, Secure over HTTPS. State-changing requests
// (login, logout, replay) are POSTs that must come from the page itself:
// same origin (Origin, or Referer, and Sec-Fetch-Site when sent) and,
// once logged in, the session's form token.
package ui
