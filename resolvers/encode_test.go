package resolvers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph"
	"github.com/jobchat/jobchat/internal/auth"
	"github.com/jobchat/jobchat/internal/files"
)

// The hand encoder's oracle: gqlgen's generated marshalling (genPlan) over
// every field the hand encoder writes, many messages and many generated
// selections, byte for byte.

// oracleOp builds the operation context of a messageAdded subscription
// with the given selection, as the server would.
func oracleOp(t *testing.T, exec *executor.Executor, selection string) (*graphql.OperationContext, graphql.CollectedField) {
	t.Helper()
	query := "subscription($c: ID!) { messageAdded(conversationId: $c) " + selection + " }\n"
	if strings.Contains(selection, "...P") {
		query += "fragment P on Profile { id displayName avatarUrl }\n"
	}
	if strings.Contains(selection, "...L") {
		query += "fragment L on Location { label latitude }\n"
	}
	ctx := graphql.StartOperationTrace(context.Background())
	rc, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query, Variables: map[string]any{"c": "conv-1"}})
	if errs != nil {
		t.Fatalf("%s: %v", query, errs)
	}
	fields := graphql.CollectFields(rc, rc.Operation.SelectionSet, []string{"Subscription"})
	return rc, fields[0]
}

// oracleSelections returns selections over every hand-encoded field:
// one with all of them, then random subsets with aliases, nested objects,
// fragments, inline fragments and repeated fields.
func oracleSelections(rng *rand.Rand, n int) []string {
	objects := map[string][]string{
		"sender":     {"id", "displayName", "avatarUrl", "__typename"},
		"location":   {"latitude", "longitude", "label", "__typename"},
		"attachment": {"url", "fileName", "mimeType", "sizeBytes", "id", "width", "height", "thumbnailUrl", "__typename"},
	}
	var scalars []string
	for name := range fieldsOf["Message"] {
		if _, ok := objects[name]; !ok {
			scalars = append(scalars, name)
		}
	}
	slices.Sort(scalars)
	sub := func(name string, all bool) string {
		fs := objects[name]
		var parts []string
		for _, f := range fs {
			if all || rng.IntN(2) == 0 {
				parts = append(parts, f)
			}
		}
		if len(parts) == 0 {
			parts = append(parts, fs[0])
		}
		switch {
		case name == "sender" && rng.IntN(3) == 0:
			parts = append(parts, "...P")
		case name == "location" && rng.IntN(3) == 0:
			parts = append(parts, "...L")
		}
		return name + " { " + strings.Join(parts, " ") + " }"
	}
	all := append(slices.Clone(scalars), sub("sender", true), sub("location", true), sub("attachment", true))
	out := []string{"{ " + strings.Join(all, " ") + " }"}
	for range n {
		var parts []string
		for _, f := range scalars {
			if rng.IntN(2) == 0 {
				continue
			}
			if rng.IntN(4) == 0 {
				f = fmt.Sprintf("%s%d: %s", f, rng.IntN(2), f)
			}
			parts = append(parts, f)
		}
		for name := range objects {
			if rng.IntN(2) == 0 {
				parts = append(parts, sub(name, false))
			}
		}
		if rng.IntN(3) == 0 {
			parts = append(parts, "... on Message { seq messageText }")
		}
		if len(parts) == 0 {
			parts = append(parts, "seq")
		}
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		out = append(out, "{ "+strings.Join(parts, " ")+" }")
	}
	return out
}

// oracleMessages returns messages covering every value shape the hand
// encoder writes: each type, present and absent optionals, odd strings
// and floats, edits, deletions, job events, every state.
func oracleMessages(rng *rand.Rand, n int) []*db.Message {
	texts := []string{"", "hello", `quote " and \ backslash`, "line\nbreak\ttab", "emoji 👍🏽 and é", "<script>&amp;", "\u2028\u2029"}
	floats := []float64{0, -0.5, 38.7223, -9.1393, 1e-7, 123456789.125, 1e21}
	pick := func(s []string) *string { v := s[rng.IntN(len(s))]; return &v }
	at := time.Date(2026, 12, 7, 10, 30, 0, 123456000, time.UTC)
	var out []*db.Message
	for i := range n {
		m := &db.Message{
			ID: db.NewID(), ConversationID: "conv-1", Seq: int64(i + 1),
			MessageText: texts[rng.IntN(len(texts))],
			MessageType: []db.MessageType{db.MessageText, db.MessageSystem, db.MessageLocation, db.MessageImage, db.MessageFile}[rng.IntN(5)],
			CreatedAt:   at.Add(time.Duration(i) * time.Second),
			Known:       &db.MessageState{Read: rng.IntN(2) == 0, Delivered: rng.IntN(2) == 0},
		}
		if m.MessageType != db.MessageSystem {
			m.SenderID, m.SenderName = pick([]string{"ana", "ben-ü"}), pick([]string{"Ana", "Ben \"B\""})
			if rng.IntN(4) > 0 {
				m.Known.Sender = &db.Profile{ID: *m.SenderID, DisplayName: *m.SenderName}
				if rng.IntN(2) == 0 {
					m.Known.Sender.AvatarURL = pick([]string{"https://x.test/a.png", ""})
				}
			}
		} else if rng.IntN(2) == 0 {
			e := db.JobEvent([]db.JobEvent{db.JobStarted, db.JobCompleted, db.JobDisputeOpened}[rng.IntN(3)])
			m.JobEvent = &e
		}
		if rng.IntN(2) == 0 {
			lat, lng := floats[rng.IntN(len(floats))], floats[rng.IntN(len(floats))]
			m.LocationLatitude, m.LocationLongitude = &lat, &lng
			if rng.IntN(2) == 0 {
				m.LocationLabel = pick(texts)
			}
		}
		switch rng.IntN(3) {
		case 0:
			m.AttachmentURL = pick([]string{"https://files.test/x.pdf", "https://files.test/ü.png"})
			if rng.IntN(2) == 0 {
				m.AttachmentFileName, m.AttachmentMimeType = pick(texts), pick([]string{"image/png", "application/pdf"})
				size := rng.Int64N(1 << 40)
				m.AttachmentSizeBytes = &size
			}
		case 1:
			// An upload, whose URLs are signed at every encoding.
			a := &db.UploadedFile{ID: db.NewID(), FileKey: "conv-1/u/ü ß.pdf", Name: *pick(texts),
				ContentType: "application/pdf", SizeBytes: rng.Int64N(1 << 25)}
			if rng.IntN(2) == 0 {
				w, h, thumb := 1+rng.IntN(9999), 1+rng.IntN(9999), "conv-1/u/thumb.jpg"
				a.Width, a.Height, a.ThumbKey, a.ContentType = &w, &h, &thumb, "image/jpeg"
			}
			m.WithAttachment(a)
		}
		if rng.IntN(2) == 0 {
			m.ClientMessageID = pick([]string{"c-1", "ü-2"})
		}
		if rng.IntN(3) == 0 {
			t := m.CreatedAt.Add(time.Minute)
			m.EditedAt = &t
		}
		if rng.IntN(4) == 0 {
			t := m.CreatedAt.Add(time.Hour)
			m.DeletedAt = &t
		}
		// Contact details: masked (the recipient's text in MessageText,
		// the sender's in OriginalText), or only flagged.
		if m.MessageType == db.MessageText && m.DeletedAt == nil {
			switch rng.IntN(3) {
			case 0:
				original := m.MessageText + " call 415 555 2671"
				m.OriginalText = &original
				m.MessageText += " call [hidden]"
				m.Flags = db.MessageFlags{db.FlagContactDetails}
			case 1:
				m.Flags = db.MessageFlags{db.FlagContactDetails}
			}
		}
		out = append(out, m)
	}
	return out
}

// oracleViewers: both senders of oracleMessages, a third user and the
// job-service, who read masked messages differently.
var oracleViewers = []auth.Caller{
	{ID: "ana", Name: "Ana"}, {ID: "ben-ü", Name: "Ben"}, {ID: "carl", Name: "Carl"},
	{ID: "job-service", Service: true},
}

// oracleSigner signs upload URLs at a fixed time, so that the two
// encoders' URLs agree to the byte.
func oracleSigner() *files.Signer {
	at := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	return files.NewSigner([]byte("oracle-key-0123456789-0123456789"), time.Hour).WithClock(func() time.Time { return at })
}

func TestHandEncoderMatchesGenerated(t *testing.T) {
	r := New(nil, nil, Config{FileURLs: oracleSigner()})
	exec := executor.New(r.executableSchema())
	rng := rand.New(rand.NewPCG(7, 11))
	messages := oracleMessages(rng, 200)
	masked := 0
	for _, m := range messages {
		if m.OriginalText != nil {
			masked++
		}
	}
	if masked < 10 {
		t.Fatalf("only %d masked messages among the oracle's", masked)
	}
	ctxs := make([]context.Context, len(oracleViewers))
	for i, c := range oracleViewers {
		ctxs[i] = auth.WithCaller(context.Background(), c)
	}
	for _, sel := range oracleSelections(rng, 60) {
		rc, field := oracleOp(t, exec, sel)
		hand, ok := compilePlan(rc, field)
		if !ok {
			t.Fatalf("the hand encoder declined a selection of its own fields: %s", sel)
		}
		hand.urls = r.cfg.FileURLs
		gen := &genPlan{r: r, rc: rc}
		for i, m := range messages {
			// Every viewer for masked messages, whose text is per
			// viewer; one of them in turn for the others.
			views := ctxs[i%len(ctxs) : i%len(ctxs)+1]
			if m.OriginalText != nil {
				views = ctxs
			}
			for _, ctx := range views {
				want, got := string(gen.encode(ctx, m)), string(hand.encode(ctx, m))
				if got != want {
					c, _ := auth.CallerFrom(ctx)
					t.Fatalf("selection %s, viewer %+v, message %+v:\nhand      %s\ngenerated %s", sel, c, *m, got, want)
				}
			}
		}
	}
}

// TestEncodingsShareByTextView: followers of one selection share an
// encoding unless they read a masked message differently. The hand plan
// makes two encodings of a masked message (the sender's and the
// recipients'), one of any other; gqlgen's generated code one per viewer.
func TestEncodingsShareByTextView(t *testing.T) {
	r := New(nil, nil, Config{})
	exec := executor.New(r.executableSchema())
	sender := "ana"
	original := "call me on 415 555 2671"
	masked := &db.Message{ID: "m1", ConversationID: "conv-1", Seq: 1, SenderID: &sender, SenderName: &sender,
		MessageText: "call me on [hidden]", OriginalText: &original, MessageType: db.MessageText,
		Flags: db.MessageFlags{db.FlagContactDetails}, Known: &db.MessageState{}}
	plain := &db.Message{ID: "m2", ConversationID: "conv-1", Seq: 2, SenderID: &sender, SenderName: &sender,
		MessageText: "see you at 9", MessageType: db.MessageText, Known: &db.MessageState{}}
	followers := func(enc encoder) []*follower {
		var out []*follower
		for _, c := range oracleViewers[:3] {
			out = append(out, &follower{ctx: auth.WithCaller(context.Background(), c), viewer: c.ID, enc: enc})
		}
		return out
	}
	tests := []struct {
		name, sel string
		hand      bool
		m         *db.Message
		encodings int
		texts     []string // what ana, ben-ü and carl read
	}{
		{"hand, masked", "{ seq messageText flags }", true, masked, 2,
			[]string{original, "call me on [hidden]", "call me on [hidden]"}},
		{"hand, not masked", "{ seq messageText }", true, plain, 1, nil},
		{"hand, masked, no messageText", "{ seq flags }", true, masked, 1, nil},
		{"generated, masked", "{ seq messageText reactions { emoji } }", false, masked, 3,
			[]string{original, "call me on [hidden]", "call me on [hidden]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, field := oracleOp(t, exec, tt.sel)
			var enc encoder = &genPlan{r: r, rc: rc}
			if tt.hand {
				p, ok := compilePlan(rc, field)
				if !ok {
					t.Fatalf("hand plan declined %s", tt.sel)
				}
				enc = p
			}
			var e encodings
			for i, fl := range followers(enc) {
				body := string(e.get(fl, tt.m))
				if tt.texts != nil && !strings.Contains(body, `"messageText":"`+tt.texts[i]+`"`) {
					t.Errorf("%s reads %s, want text %q", fl.viewer, body, tt.texts[i])
				}
			}
			if len(e.list) != tt.encodings {
				t.Errorf("%d encodings, want %d", len(e.list), tt.encodings)
			}
		})
	}
}

// TestHandEncoderCoversItsFields: every field the hand encoder claims is
// written by the full selection above, so the oracle sees each one.
func TestHandEncoderCoversItsFields(t *testing.T) {
	r := New(nil, nil, Config{})
	exec := executor.New(r.executableSchema())
	full := oracleSelections(rand.New(rand.NewPCG(1, 2)), 0)[0]
	rc, field := oracleOp(t, exec, full)
	p, ok := compilePlan(rc, field)
	if !ok {
		t.Fatal("full selection declined")
	}
	seen := map[fieldKind]bool{}
	var walk func([]planField)
	walk = func(fs []planField) {
		for _, f := range fs {
			seen[f.kind] = true
			walk(f.sub)
		}
	}
	walk(p.fields)
	for typ, fields := range fieldsOf {
		for name, kind := range fields {
			if !seen[kind] {
				t.Errorf("%s.%s is hand-encoded but not in the oracle's full selection", typ, name)
			}
		}
	}
}

// TestHandEncoderGuard fails, naming the field, when a field the hand
// encoder writes gains a resolver it does not mirror or a schema
// directive: mirror it (and extend the oracle) or drop it from fieldsOf.
func TestHandEncoderGuard(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for key, why := range handDrift(resolvedFields(), schema) {
		t.Errorf("the hand encoder writes %s, which %s", key, why)
	}
}

// TestHandDriftDetects plants the drifts the guard is for.
func TestHandDriftDetects(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	resolved := resolvedFields()
	if !resolved["Message.isRead"] || resolved["Message.clientMessageId"] {
		t.Fatalf("resolvedFields does not read the generated interfaces: %v", resolved)
	}
	resolved["Message.clientMessageId"] = true
	if why := handDrift(resolved, schema)["Message.clientMessageId"]; why == "" {
		t.Error("a resolver on clientMessageId went unnoticed")
	}
	// A directive on a hand-encoded field.
	planted := *schema.Types["Message"]
	planted.Fields = slices.Clone(planted.Fields)
	for i, f := range planted.Fields {
		if f.Name == "seq" {
			cp := *f
			cp.Directives = ast.DirectiveList{{Name: "mask"}}
			planted.Fields[i] = &cp
		}
	}
	types := map[string]*ast.Definition{}
	for k, v := range schema.Types {
		types[k] = v
	}
	types["Message"] = &planted
	withDirective := *schema
	withDirective.Types = types
	if why := handDrift(resolvedFields(), &withDirective)["Message.seq"]; !strings.Contains(why, "@mask") {
		t.Errorf("a directive on seq went unnoticed: %q", why)
	}
}

// TestPushedValuesMatchExecutorValues: the executor path marshals the same
// Known state the pushed path encodes (resolvers read Known first), so a
// stored message's fields cannot differ between the two.
func TestGeneratedReadsKnownState(t *testing.T) {
	r := New(nil, nil, Config{})
	exec := executor.New(r.executableSchema())
	rc, _ := oracleOp(t, exec, "{ isRead status sender { id } reactions { emoji count reactedByMe } }")
	m := oracleMessages(rand.New(rand.NewPCG(3, 4)), 1)[0]
	sender := "ben"
	m.SenderID = &sender
	m.MessageType = db.MessageText
	m.DeletedAt = nil // a deleted message shows no reactions
	m.Known = &db.MessageState{Read: false, Delivered: true, Sender: &db.Profile{ID: "ben", DisplayName: "Ben"},
		Reactions: []*db.Reaction{
			{MessageID: m.ID, ProfileID: "ben", Emoji: "👍", CreatedAt: m.CreatedAt},
			{MessageID: m.ID, ProfileID: "ana", Emoji: "🎉", CreatedAt: m.CreatedAt.Add(time.Second)},
			{MessageID: m.ID, ProfileID: "ana", Emoji: "👍", CreatedAt: m.CreatedAt.Add(2 * time.Second)},
		}}
	gen := &genPlan{r: r, rc: rc}
	for viewer, want := range map[string]string{
		"ana": `{"data":{"messageAdded":{"isRead":false,"status":"DELIVERED","sender":{"id":"ben"},"reactions":[{"emoji":"👍","count":2,"reactedByMe":true},{"emoji":"🎉","count":1,"reactedByMe":true}]}}}`,
		"ben": `{"data":{"messageAdded":{"isRead":false,"status":"DELIVERED","sender":{"id":"ben"},"reactions":[{"emoji":"👍","count":2,"reactedByMe":true},{"emoji":"🎉","count":1,"reactedByMe":false}]}}}`,
	} {
		ctx := auth.WithCaller(context.Background(), auth.Caller{ID: viewer})
		if got := string(gen.encode(ctx, m)); got != want {
			t.Errorf("viewer %s:\ngot  %s\nwant %s", viewer, got, want)
		}
	}
}
