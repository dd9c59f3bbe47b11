package legacy

import (
	"errors"
	"net/http"
	"strings"

	"github.com/jobchat/jobchat/internal/auth"
)

var (
	errNoCredentials = errors.New("no token: send Authorization: Bearer <token>, a token query parameter or the cookie")
	errService       = errors.New("service tokens cannot use the chat socket")
	errBadHeader     = errors.New(`authorization must be "Bearer <token>"`)
)

// authenticate finds the token where the old frontend may put it: the
// Authorization header, the token query parameter, or the cookie, in that
// order. The first one present decides: bad credentials refuse the socket
// even when another place holds good ones.
func (h *Handler) authenticate(r *http.Request) (auth.Caller, error) {
	token, err := h.token(r)
	if err != nil {
		return auth.Caller{}, err
	}
	c, err := h.backend.Authenticate(r.Context(), token)
	if err != nil {
		return auth.Caller{}, err
	}
	if c.Service {
		return auth.Caller{}, errService
	}
	return c, nil
}

func (h *Handler) token(r *http.Request) (string, error) {
	if header := strings.TrimSpace(r.Header.Get("Authorization")); header != "" {
		scheme, token, ok := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", errBadHeader
		}
		return token, nil
	}
	if token := r.URL.Query().Get("token"); token != "" {
		return token, nil
	}
	if ck, err := r.Cookie(h.cfg.Cookie); err == nil && ck.Value != "" {
		return ck.Value, nil
	}
	return "", errNoCredentials
}
