package server

import "net/http"

// securityHeaders are set on every answer, before the handler runs, so
// that a handler may replace them (the playground sets a CSP of its own):
//
//   - X-Content-Type-Options: nosniff, so that no browser reads a JSON
//     answer or an attachment as HTML or script;
//   - Referrer-Policy: no-referrer, so that no URL of this server (a
//     signed attachment link, a query in a GET) leaks to another site;
//   - Content-Security-Policy: default-src 'none'; frame-ancestors 'none':
//     nothing this server answers, but the playground, is a page, so a
//     response that a browser renders after all may load nothing and run
//     nothing, and no site may frame it;
//   - X-Frame-Options: DENY, frame-ancestors for browsers that predate it.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
	{"X-Frame-Options", "DENY"},
}

func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		next.ServeHTTP(w, r)
	})
}

// SecurityHeaders sets the security headers on answers that next gives
// outside the handler New returns (which sets them itself): /metrics on
// the main listener.
func SecurityHeaders(next http.Handler) http.Handler { return withSecurityHeaders(next) }
