package resolvers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/rs/zerolog"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/graph"
)

// genPlan encodes a subscription's events with gqlgen's own generated
// code: it runs the subscription operation through the executable schema
// with the event injected, so that the root resolver hands that one event
// back instead of subscribing, and every field below resolves exactly as
// it does for queries (resolvers, directives, per-viewer fields). The feed
// still runs it once per distinct (selection, viewer) per event, never
// once per socket.
type genPlan struct {
	r  *Resolver
	rc *graphql.OperationContext
}

var _ encoder = (*genPlan)(nil)

// shareKey is the viewer: generated resolvers may read the caller
// (reactedByMe, myRole, unreadCount, messageText), so each viewer gets an
// encoding of their own.
func (g *genPlan) shareKey(fl *follower, _ any) string { return fl.viewer }

type injectKey struct{}

// injected returns the event a genPlan is encoding, if ctx is one of its.
func injected(ctx context.Context) (any, bool) {
	v := ctx.Value(injectKey{})
	return v, v != nil
}

// injectedChan is what a subscription resolver returns while a genPlan
// encodes: a channel holding the one event.
func injectedChan[T any](v any) (<-chan T, error) {
	t, ok := v.(T)
	if !ok {
		return nil, fmt.Errorf("encode subscription event: got %T", v)
	}
	ch := make(chan T, 1)
	ch <- t
	close(ch)
	return ch, nil
}

func (g *genPlan) encode(ctx context.Context, v any) []byte {
	ctx = graphql.WithOperationContext(ctx, g.rc)
	ctx = context.WithValue(ctx, injectKey{}, v)
	ctx = context.WithValue(ctx, cacheKey{}, newRequestCache())
	setup := graphql.WithResponseContext(ctx, ErrorPresenter, recoverEncode)
	responses := g.r.executableSchema().Exec(setup)
	resp := &graphql.Response{Errors: graphql.GetErrors(setup)}
	if len(resp.Errors) == 0 {
		run := graphql.WithResponseContext(ctx, ErrorPresenter, recoverEncode)
		if r := responses(run); r != nil {
			resp = r
			resp.Errors = append(resp.Errors, graphql.GetErrors(run)...)
		}
	}
	// Not json.Marshal: it would escape <, > and & inside the data, where
	// gqlgen's marshalers and the hand encoder write them as they are.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("encode subscription event")
		return []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func recoverEncode(ctx context.Context, p any) error {
	zerolog.Ctx(ctx).Error().Any("panic", p).Msg("panic while encoding a subscription event")
	return gqlerror.Errorf("internal error")
}

// executableSchema is the schema the genPlans run, built once.
func (r *Resolver) executableSchema() graphql.ExecutableSchema {
	r.esOnce.Do(func() { r.es = graph.NewExecutableSchema(r.Schema()) })
	return r.es
}

// plans caches encoders by the selection's AST node, which gqlgen's query
// cache shares between every operation with the same text, so that
// subscribers with the same query share one encoder and one encoding per
// event. Selections that vary with the variables are not cached.
type plans struct {
	mu sync.Mutex
	m  map[*ast.Field]encoder
}

// maxPlans bounds the cache against clients that send endless distinct
// queries; past it, the cache starts over.
const maxPlans = 1000

// get returns the encoder for a subscription's root field: the hand plan
// where it mirrors the selection exactly (messageAdded only), gqlgen's
// generated code otherwise.
func (ps *plans) get(r *Resolver, rc *graphql.OperationContext, field graphql.CollectedField) encoder {
	cacheable := !variesWithVariables(rc, field.Selections, 0)
	if cacheable {
		ps.mu.Lock()
		e := ps.m[field.Field]
		ps.mu.Unlock()
		if e != nil {
			return e
		}
	}
	var e encoder = &genPlan{r: r, rc: rc}
	if field.Name == "messageAdded" {
		if p, ok := compilePlan(rc, field); ok {
			p.urls = r.cfg.FileURLs
			e = p
		}
	}
	if !cacheable {
		return e
	}
	ps.mu.Lock()
	if ps.m == nil || len(ps.m) >= maxPlans {
		ps.m = make(map[*ast.Field]encoder)
	}
	ps.m[field.Field] = e
	ps.mu.Unlock()
	return e
}

// handMirrors lists the fields the hand encoder writes whose generated
// code calls a resolver, and which it mirrors on purpose (the oracle test
// holds them side by side). Any other field it writes must be a plain
// read of the model, with no directive.
var handMirrors = map[string]bool{
	"Message.sender": true, "Message.location": true, "Message.attachment": true,
	"Message.isRead": true, "Message.status": true, "Message.messageText": true,
	"Message.flags": true,
}

var (
	driftOnce sync.Once
	drift     map[string]string
)

// handSafe reports whether the hand encoder may write typ.field: false
// when the field has gained a resolver it does not mirror, or a directive
// in the schema.
func handSafe(typ, field string) bool {
	driftOnce.Do(func() {
		drift = handDrift(resolvedFields(), graph.NewExecutableSchema(graph.Config{}).Schema())
	})
	_, bad := drift[typ+"."+field]
	return !bad
}

// handDrift finds the fields the hand encoder writes that it no longer
// mirrors, with the reason: a resolver in gqlgen's generated interfaces
// that handMirrors does not list, or a schema directive.
func handDrift(resolved map[string]bool, schema *ast.Schema) map[string]string {
	out := map[string]string{}
	for typ, fields := range fieldsOf {
		def := schema.Types[typ]
		for name := range fields {
			key := typ + "." + name
			if name == "__typename" {
				continue
			}
			if resolved[key] && !handMirrors[key] {
				out[key] = "has a resolver the hand encoder does not mirror"
			}
			if def == nil {
				out[key] = "type is not in the schema"
				continue
			}
			fd := def.Fields.ForName(name)
			if fd == nil {
				out[key] = "field is not in the schema"
				continue
			}
			for _, d := range fd.Directives {
				out[key] = "has the directive @" + d.Name
			}
		}
	}
	return out
}

// resolvedFields lists "Type.field" for every field gqlgen's generated
// code resolves through a resolver method, read from the generated
// resolver interfaces (graph.ResolverRoot's XResolver methods).
func resolvedFields() map[string]bool {
	out := map[string]bool{}
	root := reflect.TypeOf((*graph.ResolverRoot)(nil)).Elem()
	for i := range root.NumMethod() {
		m := root.Method(i)
		if m.Type.NumOut() != 1 {
			continue
		}
		iface := m.Type.Out(0)
		if iface.Kind() != reflect.Interface {
			continue
		}
		for j := range iface.NumMethod() {
			name := iface.Method(j).Name
			out[m.Name+"."+strings.ToLower(name[:1])+name[1:]] = true
		}
	}
	return out
}
