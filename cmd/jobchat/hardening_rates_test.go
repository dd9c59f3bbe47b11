package main

import (
	"net/url"
	"testing"

	"github.com/jobchat/jobchat/db/dbtest"
	"github.com/jobchat/jobchat/internal/testsvc"
)

// One token a minute after a burst: the test is over long before one
// comes back, however slow the machine.
var hardeningSlowRates = map[string]string{
	"JOBCHAT_SEND_RATE": "0.0167", "JOBCHAT_SEND_BURST": "3",
	"JOBCHAT_TYPING_RATE": "0.0167", "JOBCHAT_TYPING_BURST": "2",
}

func hardeningVars(extra map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range hardeningSlowRates {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

func (e *env) hardeningSend(tb testing.TB, token, conv, text string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, sendMessage, map[string]any{"input": map[string]any{"conversationId": conv, "messageText": text}})
}

func (e *env) hardeningTyping(tb testing.TB, token, conv string) gqlResponse {
	tb.Helper()
	return e.do(tb, token, `mutation($c: ID!) { setTyping(conversationId: $c, typing: true) }`, map[string]any{"c": conv})
}

func hardeningLimited(tb testing.TB, r gqlResponse, doing string) {
	tb.Helper()
	r.fails(tb, "RATE_LIMITED", doing+" too fast")
	if ms, _ := r.Errors[0].Extensions["retryAfterMs"].(float64); ms <= 0 {
		tb.Fatalf("retryAfterMs = %v, want > 0", r.Errors[0].Extensions["retryAfterMs"])
	}
}

// TestHardeningRatesAcrossInstances: with Redis, two instances spend one
// budget per user, for sends and for setTyping: what one allowed, the
// other counts.
func TestHardeningRatesAcrossInstances(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			vars := hardeningVars(map[string]string{
				"JOBCHAT_REDIS_URL":    redisURL,
				"JOBCHAT_REDIS_PREFIX": "jobchat-test-rates-" + randomSuffix() + ":",
			})
			dbc := dbtest.Config(t, dialect)
			a, b := newEnvOnDB(t, dbc, vars), newEnvOnDB(t, dbc, vars)
			ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
			conv := a.openJob(t, "job-rates", "ana", "ben", "").ID

			for i, e := range []*env{a, b, a} {
				e.hardeningSend(t, ana, conv, "send "+string(rune('1'+i))).ok(t, nil)
			}
			hardeningLimited(t, b.hardeningSend(t, ana, conv, "fourth"), "sending")
			hardeningLimited(t, a.hardeningSend(t, ana, conv, "fifth"), "sending")
			b.hardeningSend(t, ben, conv, "ben has his own").ok(t, nil)

			a.hardeningTyping(t, ana, conv).ok(t, nil)
			b.hardeningTyping(t, ana, conv).ok(t, nil)
			hardeningLimited(t, a.hardeningTyping(t, ana, conv), "setting typing")
			hardeningLimited(t, b.hardeningTyping(t, ana, conv), "setting typing")
			a.hardeningTyping(t, ben, conv).ok(t, nil)

			var out struct {
				Conversation struct {
					LastSeq int `json:"lastSeq"`
				} `json:"conversation"`
			}
			b.do(t, ben, `query($c: ID!) { conversation(id: $c) { lastSeq } }`, map[string]any{"c": conv}).ok(t, &out)
			if out.Conversation.LastSeq != 4 {
				t.Fatalf("lastSeq %d, want 4: three of ana's, one of ben's", out.Conversation.LastSeq)
			}
		})
	}
}

// TestHardeningRatesPerInstance: without Redis each instance counts on
// its own, as before.
func TestHardeningRatesPerInstance(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dbc := dbtest.Config(t, dialect)
			a, b := newEnvOnDB(t, dbc, hardeningSlowRates), newEnvOnDB(t, dbc, hardeningSlowRates)
			ana := userToken(t, "ana", "Ana")
			conv := a.openJob(t, "job-rates", "ana", "ben", "").ID
			for _, e := range []*env{a, b} {
				for i := range 3 {
					e.hardeningSend(t, ana, conv, "send "+string(rune('1'+i))).ok(t, nil)
				}
				hardeningLimited(t, e.hardeningSend(t, ana, conv, "fourth"), "sending")
			}
		})
	}
}

// TestHardeningRatesRedisDown: when Redis stops answering, the limit
// counts on this instance alone, as without Redis
// (JOBCHAT_RATE_FAIL_OPEN=true, the default: the burst of 3 goes through,
// the 4th send is refused), or refuses every send with RATE_LIMITED and
// retryAfterMs 1000 (false). Redis is reached through the test helpers'
// fault proxy, which the test cuts.
func TestHardeningRatesRedisDown(t *testing.T) {
	redisURL := testsvc.RedisURL(t)
	for _, failOpen := range []string{"true", "false"} {
		t.Run("fail open "+failOpen, func(t *testing.T) {
			u, err := url.Parse(redisURL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := testsvc.NewFaultProxy(t, u.Host)
			u.Host = proxy.Addr()
			e := newEnv(t, "sqlite", hardeningVars(map[string]string{
				"JOBCHAT_REDIS_URL":      u.String(),
				"JOBCHAT_REDIS_PREFIX":   "jobchat-test-down-" + randomSuffix() + ":",
				"JOBCHAT_RATE_FAIL_OPEN": failOpen,
			}))
			ana := userToken(t, "ana", "Ana")
			conv := e.openJob(t, "job-down", "ana", "ben", "").ID
			// This one spends a token of the shared bucket, not the local one.
			e.hardeningSend(t, ana, conv, "while redis answers").ok(t, nil)
			proxy.Refuse()
			proxy.Cut()
			for i := range 4 {
				r := e.hardeningSend(t, ana, conv, "while redis is down "+string(rune('1'+i)))
				if failOpen == "true" {
					if i < 3 {
						r.ok(t, nil)
					} else {
						hardeningLimited(t, r, "sending")
					}
					continue
				}
				hardeningLimited(t, r, "sending")
				if ms := r.Errors[0].Extensions["retryAfterMs"]; ms != float64(1000) {
					t.Fatalf("retryAfterMs %v, want 1000", ms)
				}
			}
		})
	}
}
