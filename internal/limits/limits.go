// Package limits bounds what one GraphQL document may ask of the server
// before the validator runs. gqlparser's validation rules are quadratic in
// places (field merging compares every pair of fields that share a response
// name, directive checks compare every pair on one location), so a document
// of a few hundred kilobytes can keep a core busy for seconds. The limits
// here are checked on the parsed document in one linear walk, fragments
// expanded with memoization, so that refusing any shape costs about as much
// as parsing it.
//
// It knows nothing of jobchat's schema. It imports gqlparser, jobchat's
// jsontext (for \u escapes) and the standard library only.
package limits

import (
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Config sets the limits. Its zero value gives the defaults documented on
// each field; a negative value turns that limit off (for benchmarks that
// measure what a limit saves).
type Config struct {
	// Bytes caps the length of a document. Zero means 32 KiB: a message
	// of 4,000 characters written into the document fits, and the caches
	// of parsed and persisted documents stay small.
	Bytes int
	// Tokens caps the lexical tokens of a document; the parser stops at
	// the first one past it. Zero means 2,000 (GraphiQL's introspection
	// query counts 181 as gqlparser counts them, jobchat's inbox screen
	// about 120). Every other rule's cost grows with it.
	Tokens int
	// Depth caps how deeply fields nest, fragments followed; a top-level
	// field is at depth 1. Zero means 20 (GraphiQL's introspection query
	// nests 15 deep).
	Depth int
	// Aliases caps the aliased fields of one operation, each fragment
	// counted as often as it is spread. Zero means 30.
	Aliases int
	// Directives caps the directives on one field, fragment, operation or
	// variable. Zero means 4 (@include and @skip are all an operation
	// can use here).
	Directives int
	// Duplicates caps how many fields may share one response name at one
	// place of the response (fragments expanded, same-named fields'
	// selections merged, as the validator merges them). Zero means 20.
	// Field merging validation compares these fields pairwise, so with
	// Fields this bounds its work to Duplicates × Fields / 2 comparisons
	// (about 1 ms at the defaults). Apollo Client adds __typename to
	// every fragment, so a place where n fragments are spread has n+1 of
	// them.
	Duplicates int
	// Fields caps the fields of one operation or fragment with every
	// fragment expanded where it is spread. Zero means 1,000 (GraphiQL's
	// introspection query has 227).
	Fields int
	// Fragments caps the fragment definitions of a document. Zero means
	// 50. Field merging validation compares the fragments spread in one
	// place pairwise.
	Fragments int
}

// The defaults of Config.
const (
	DefaultBytes      = 32 << 10
	DefaultTokens     = 2000
	DefaultDepth      = 20
	DefaultAliases    = 30
	DefaultDirectives = 4
	DefaultDuplicates = 20
	DefaultFields     = 1000
	DefaultFragments  = 50
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Bytes, DefaultBytes)
	def(&c.Tokens, DefaultTokens)
	def(&c.Depth, DefaultDepth)
	def(&c.Aliases, DefaultAliases)
	def(&c.Directives, DefaultDirectives)
	def(&c.Duplicates, DefaultDuplicates)
	def(&c.Fields, DefaultFields)
	def(&c.Fragments, DefaultFragments)
	return c
}

// The extensions.code values of refusals: a document over the token limit
// does not parse; one over another limit does not validate.
const (
	CodeParseFailed      = "GRAPHQL_PARSE_FAILED"
	CodeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
)

// Checker checks documents against one Config. It is safe for concurrent
// use.
type Checker struct {
	cfg Config
}

// New returns a Checker for cfg.
func New(cfg Config) *Checker {
	return &Checker{cfg: cfg.withDefaults()}
}

// Config returns the limits in force, defaults filled in.
func (c *Checker) Config() Config { return c.cfg }

// Parse parses query under the size and token limits and checks the other
// limits on the result. A refusal is a *gqlerror.Error with
// extensions.code set. A document that is not Unicode text (bytes that are
// not UTF-8, or a string holding a lone surrogate escape such as \ud800)
// does not parse either: gqlparser would read both as U+FFFD.
func (c *Checker) Parse(query string) (*ast.QueryDocument, *gqlerror.Error) {
	if over(len(query), c.cfg.Bytes) {
		return nil, parseError("the document is %d bytes long; the limit is %d", len(query), c.cfg.Bytes)
	}
	if err := checkText(query); err != nil {
		return nil, err
	}
	tokens := c.cfg.Tokens
	if tokens < 0 {
		tokens = 0 // unlimited, in gqlparser's terms
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, tokens)
	if err != nil {
		gqlErr, ok := err.(*gqlerror.Error)
		if !ok {
			gqlErr = gqlerror.Wrap(err)
		}
		setCode(gqlErr, CodeParseFailed)
		return nil, gqlErr
	}
	if gqlErr := c.Check(doc); gqlErr != nil {
		return nil, gqlErr
	}
	return doc, nil
}

// Check checks a parsed document against every limit but the token limit.
// Every operation and fragment of the document is checked, used or not,
// since the validator walks them all.
func (c *Checker) Check(doc *ast.QueryDocument) *gqlerror.Error {
	if over(len(doc.Fragments), c.cfg.Fragments) {
		return refuse(doc.Fragments[c.cfg.Fragments].Position, "%d fragments; the limit is %d", len(doc.Fragments), c.cfg.Fragments)
	}
	w := &walker{
		cfg:       c.cfg,
		fragments: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo:      make(map[string]*summary, len(doc.Fragments)),
	}
	for _, f := range doc.Fragments {
		// The first definition wins; duplicates are the validator's to
		// report.
		if _, ok := w.fragments[f.Name]; !ok {
			w.fragments[f.Name] = f
		}
	}
	// First the counts, which fragments make cheap to compute; only then
	// the duplicates, whose walk expands fragments and so costs as much as
	// the fields the first pass has bounded.
	for _, op := range doc.Operations {
		if err := w.directives(op.Directives, op.Position, "operation"); err != nil {
			return err
		}
		for _, v := range op.VariableDefinitions {
			if err := w.directives(v.Directives, v.Position, "variable $"+v.Variable); err != nil {
				return err
			}
		}
		if _, err := w.selectionSet(op.SelectionSet, op.Position); err != nil {
			return err
		}
	}
	for _, f := range doc.Fragments {
		if _, err := w.fragment(f.Name, f.Position); err != nil {
			return err
		}
	}
	if w.cfg.Duplicates < 0 {
		return nil
	}
	for _, op := range doc.Operations {
		if err := w.duplicates([]ast.SelectionSet{op.SelectionSet}); err != nil {
			return err
		}
	}
	for _, f := range doc.Fragments {
		if err := w.duplicates([]ast.SelectionSet{f.SelectionSet}); err != nil {
			return err
		}
	}
	return nil
}

// summary is what a selection set contributes where it is used: the fields
// it adds there in all (fragments expanded, nested fields included), how
// deeply they nest, and how many of them are aliased.
type summary struct {
	fields  int
	depth   int
	aliases int
}

// saturate bounds counts, which fragments spread in fragments can make
// grow exponentially: anything this large is over every limit anyway.
const saturate = 1 << 40

func add(a, b int) int {
	if a+b > saturate {
		return saturate
	}
	return a + b
}

// count formats a count that may have saturated.
func count(n int) string {
	if n >= saturate {
		return "more than a trillion"
	}
	return fmt.Sprint(n)
}

type walker struct {
	cfg       Config
	fragments map[string]*ast.FragmentDefinition
	// memo holds each fragment's summary once walked; a nil entry marks
	// a fragment being walked, so that a spread of it is a cycle.
	memo map[string]*summary
}

// over reports whether n exceeds limit, unless the limit is off.
func over(n, limit int) bool {
	return limit >= 0 && n > limit
}

func (w *walker) directives(ds ast.DirectiveList, pos *ast.Position, where string) *gqlerror.Error {
	if over(len(ds), w.cfg.Directives) {
		return refuse(pos, "%s has %d directives; the limit is %d", where, len(ds), w.cfg.Directives)
	}
	return nil
}

// selectionSet summarizes set and checks the directives inside it. pos is
// where set begins, for errors.
func (w *walker) selectionSet(set ast.SelectionSet, pos *ast.Position) (summary, *gqlerror.Error) {
	var s summary
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if err := w.directives(sel.Directives, sel.Position, "field "+sel.Alias); err != nil {
				return s, err
			}
			s.fields = add(s.fields, 1)
			if sel.Alias != sel.Name {
				s.aliases = add(s.aliases, 1)
			}
			depth := 1
			if len(sel.SelectionSet) > 0 {
				sub, err := w.selectionSet(sel.SelectionSet, sel.Position)
				if err != nil {
					return s, err
				}
				s.fields = add(s.fields, sub.fields)
				s.aliases = add(s.aliases, sub.aliases)
				depth = add(sub.depth, 1)
			}
			s.depth = max(s.depth, depth)
		case *ast.InlineFragment:
			if err := w.directives(sel.Directives, sel.Position, "inline fragment"); err != nil {
				return s, err
			}
			sub, err := w.selectionSet(sel.SelectionSet, sel.Position)
			if err != nil {
				return s, err
			}
			s = merge(s, sub)
		case *ast.FragmentSpread:
			if err := w.directives(sel.Directives, sel.Position, "fragment spread ..."+sel.Name); err != nil {
				return s, err
			}
			sub, err := w.fragment(sel.Name, sel.Position)
			if err != nil {
				return s, err
			}
			s = merge(s, sub)
		}
		// Checked as the counts grow, so that a huge set stops early; a
		// part's counts are at most the whole's.
		if over(s.fields, w.cfg.Fields) {
			return s, refuse(pos, "%s fields with fragments expanded; the limit is %d", count(s.fields), w.cfg.Fields)
		}
		if over(s.depth, w.cfg.Depth) {
			return s, refuse(pos, "fields nest %d deep; the limit is %d", s.depth, w.cfg.Depth)
		}
		if over(s.aliases, w.cfg.Aliases) {
			return s, refuse(pos, "%s aliased fields; the limit is %d", count(s.aliases), w.cfg.Aliases)
		}
	}
	return s, nil
}

// merge adds what a fragment contributes to the selection set it is spread
// into.
func merge(s, sub summary) summary {
	return summary{
		fields:  add(s.fields, sub.fields),
		depth:   max(s.depth, sub.depth),
		aliases: add(s.aliases, sub.aliases),
	}
}

// fragment summarizes the named fragment, once per document. An unknown
// fragment contributes nothing (the validator reports it); a fragment that
// spreads itself, directly or not, is refused here, since expanding it
// would never end.
func (w *walker) fragment(name string, pos *ast.Position) (summary, *gqlerror.Error) {
	if s, seen := w.memo[name]; seen {
		if s == nil {
			return summary{}, refuse(pos, "fragment %s spreads itself", name)
		}
		return *s, nil
	}
	f, ok := w.fragments[name]
	if !ok {
		return summary{}, nil
	}
	if err := w.directives(f.Directives, f.Position, "fragment "+name); err != nil {
		return summary{}, err
	}
	w.memo[name] = nil
	s, err := w.selectionSet(f.SelectionSet, f.Position)
	if err != nil {
		return summary{}, err
	}
	w.memo[name] = &s
	return s, nil
}

// duplicates checks the selection sets that merge into one place of the
// response (those of every field there with the same response name):
// collected with their fragments, each response name may appear at most
// Duplicates times, and so on below. Its walk expands fragments, so it must
// run only once the first pass has bounded the expanded fields and ruled
// out cycles.
func (w *walker) duplicates(sets []ast.SelectionSet) *gqlerror.Error {
	byName := map[string][]*ast.Field{}
	var names []string // in document order, for a stable error
	var collect func(set ast.SelectionSet)
	collect = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if _, ok := byName[sel.Alias]; !ok {
					names = append(names, sel.Alias)
				}
				byName[sel.Alias] = append(byName[sel.Alias], sel)
			case *ast.InlineFragment:
				collect(sel.SelectionSet)
			case *ast.FragmentSpread:
				if f, ok := w.fragments[sel.Name]; ok {
					collect(f.SelectionSet)
				}
			}
		}
	}
	for _, set := range sets {
		collect(set)
	}
	for _, name := range names {
		fields := byName[name]
		if over(len(fields), w.cfg.Duplicates) {
			return refuse(fields[w.cfg.Duplicates].Position,
				"%d fields answer as %q in one place; the limit is %d", len(fields), name, w.cfg.Duplicates)
		}
		var subs []ast.SelectionSet
		for _, f := range fields {
			if len(f.SelectionSet) > 0 {
				subs = append(subs, f.SelectionSet)
			}
		}
		if len(subs) > 0 {
			if err := w.duplicates(subs); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseError(format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	setCode(err, CodeParseFailed)
	return err
}

func refuse(pos *ast.Position, format string, args ...any) *gqlerror.Error {
	var err *gqlerror.Error
	if pos != nil {
		err = gqlerror.ErrorPosf(pos, format, args...)
	} else {
		err = gqlerror.Errorf(format, args...)
	}
	setCode(err, CodeValidationFailed)
	return err
}

func setCode(err *gqlerror.Error, code string) {
	if err.Extensions == nil {
		err.Extensions = map[string]any{}
	}
	err.Extensions["code"] = code
}
