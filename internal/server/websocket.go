package server

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// originPolicy decides which browser origins may open a websocket. Browsers
// send cookies with cross-site websocket handshakes, so without this check any
// page could act as a logged-in user.
type originPolicy struct {
	any     bool
	origins []string // lower-cased, without trailing slash
}

func newOriginPolicy(allowed []string) originPolicy {
	var p originPolicy
	for _, o := range allowed {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o == "*" {
			p.any = true
		}
		p.origins = append(p.origins, o)
	}
	return p
}

// CheckOrigin returns the origin check of /query's websockets for allowed
// (Config.AllowedOrigins), for websocket endpoints mounted beside it
// through Config.Handlers, so that one setting governs every socket.
func CheckOrigin(allowed []string) func(r *http.Request) bool {
	return newOriginPolicy(allowed).allowed
}

func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Non-browser clients send no Origin and are not exposed to CSRF.
		return true
	}
	if p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(p.origins, strings.ToLower(strings.TrimSuffix(origin, "/")))
}

// websocketGate answers upgrade requests that cannot succeed with a precise
// status and a GraphQL-shaped body, before authentication runs: a cross-site
// page gets 403 even when the browser attached the user's credentials.
func websocketGate(origins originPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		log := zerolog.Ctx(r.Context())
		switch {
		case !websocket.IsWebSocketUpgrade(r):
			writeError(w, http.StatusBadRequest, "not a websocket upgrade")
		case r.Method != http.MethodGet:
			writeError(w, http.StatusMethodNotAllowed, "websocket upgrade requires GET")
		case !validHandshake(r):
			writeError(w, http.StatusBadRequest, "bad websocket handshake")
		case !origins.allowed(r):
			log.Debug().Str("origin", r.Header.Get("Origin")).Msg("websocket origin refused")
			writeError(w, http.StatusForbidden, "origin not allowed")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// validHandshake checks the version and key the way gorilla will, so that
// malformed handshakes (scanners, broken proxies) are answered here.
func validHandshake(r *http.Request) bool {
	if strings.TrimSpace(r.Header.Get("Sec-Websocket-Version")) != "13" {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-Websocket-Key"))
	return err == nil && len(key) == 16
}
