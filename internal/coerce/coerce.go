// Package coerce checks the variables of a GraphQL request against their
// declared types as the GraphQL spec (October 2021, "Input Coercion" of
// each type) says, before gqlgen coerces them. gqlgen and gqlparser are
// lenient where the spec is not: they take enum values in any case, JSON
// strings for Int and Float ("12.5"), JSON numbers for String, Ints past 32
// bits; and some of what they let through fails later in generated code as
// an internal error. Here each of those is a request error naming the
// variable path, which jobchat's error presenter turns into BAD_USER_INPUT.
//
// Variables decoded by package jsontext may hold jsontext.InvalidString
// where a string was not Unicode text; no type accepts one.
//
// It knows nothing of jobchat's schema. It imports gqlparser, jobchat's
// jsontext and the standard library only.
package coerce

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/jobchat/jobchat/internal/jsontext"
)

// CodeBadUserInput is the extensions.code of every refusal.
const CodeBadUserInput = "BAD_USER_INPUT"

// Config sets what the spec leaves to the server. Its zero value adds no
// limits of its own.
type Config struct {
	// MaxIDLength, if positive, caps ID values at that many characters,
	// so that an id no row can have is refused before any query.
	MaxIDLength int
}

// Checker checks variables against one schema. It is safe for concurrent
// use.
type Checker struct {
	schema *ast.Schema
	cfg    Config
}

// New returns a Checker for schema.
func New(schema *ast.Schema, cfg Config) *Checker {
	return &Checker{schema: schema, cfg: cfg}
}

// Variables checks vars, decoded from JSON (by jsontext.DecodeObject, or with
// numbers as json.Number or float64), against the variable definitions of
// op, which must come from a document that validates against the schema.
// Values may also be Go values a transport put there itself (a multipart
// upload for a custom scalar). It changes nothing: gqlgen coerces the
// values afterwards, and what passes here is what the spec accepts, which
// gqlgen accepts too. The error's path is ["variable", name, ...], its
// code BAD_USER_INPUT.
func (c *Checker) Variables(op *ast.OperationDefinition, vars map[string]any) *gqlerror.Error {
	for _, def := range op.VariableDefinitions {
		path := ast.Path{ast.PathName("variable"), ast.PathName(def.Variable)}
		val, ok := vars[def.Variable]
		if !ok {
			if def.DefaultValue == nil && def.Type.NonNull {
				return refuse(path, "must be defined")
			}
			// A default is a literal, which validation has checked.
			continue
		}
		if err := c.value(def.Type, val, path); err != nil {
			return err
		}
	}
	return nil
}

func (c *Checker) value(typ *ast.Type, val any, path ast.Path) *gqlerror.Error {
	if val == nil {
		if typ.NonNull {
			return refuse(path, "cannot be null")
		}
		return nil
	}
	if typ.Elem != nil {
		list, ok := val.([]any)
		if !ok {
			// The spec coerces a single value to a list of one.
			return c.value(typ.Elem, val, path)
		}
		for i, el := range list {
			if err := c.value(typ.Elem, el, append(path[:len(path):len(path)], ast.PathIndex(i))); err != nil {
				return err
			}
		}
		return nil
	}
	def := c.schema.Types[typ.NamedType]
	if def == nil {
		// Validation reports unknown types before variables are read.
		return nil
	}
	switch def.Kind {
	case ast.Scalar:
		return c.scalar(def, val, path)
	case ast.Enum:
		s, ok := val.(string)
		if !ok {
			return refuse(path, "must be a %s value given as a string, not %s", def.Name, kind(val))
		}
		for _, v := range def.EnumValues {
			if v.Name == s {
				return nil
			}
		}
		// No suggestion, even of a case: schema details are for
		// introspection to give.
		return refuse(path, "%s is not a valid %s", quoteIfOdd(s), def.Name)
	case ast.InputObject:
		obj, ok := val.(map[string]any)
		if !ok {
			return refuse(path, "must be a %s object, not %s", def.Name, kind(val))
		}
		// Unknown fields first, in a stable order: the first one the
		// schema does not list, by the object's own sorted keys.
		for _, name := range sortedKeys(obj) {
			// __typename is let through, as gqlgen does: Apollo Client
			// leaves it on objects from its cache that apps pass back
			// as input, and it is ignored.
			if def.Fields.ForName(name) == nil && name != "__typename" {
				return refuse(append(path[:len(path):len(path)], ast.PathName(name)), "is not a field of %s", def.Name)
			}
		}
		for _, f := range def.Fields {
			fpath := append(path[:len(path):len(path)], ast.PathName(f.Name))
			v, present := obj[f.Name]
			if !present {
				if f.Type.NonNull && f.DefaultValue == nil {
					return refuse(fpath, "must be defined")
				}
				continue
			}
			if err := c.value(f.Type, v, fpath); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

func (c *Checker) scalar(def *ast.Definition, val any, path ast.Path) *gqlerror.Error {
	if bad, ok := val.(jsontext.InvalidString); ok {
		return refuse(path, "is not Unicode text: it %s", bad.Reason)
	}
	switch def.Name {
	case "String":
		if _, ok := val.(string); !ok {
			return refuse(path, "must be a String, not %s", kind(val))
		}
	case "Boolean":
		if _, ok := val.(bool); !ok {
			return refuse(path, "must be a Boolean, not %s", kind(val))
		}
	case "Int":
		n, big, ok := wholeNumber(val)
		if !ok {
			return refuse(path, "must be an Int, not %s", kind(val))
		}
		if big || n < math.MinInt32 || n > math.MaxInt32 {
			return refuse(path, "Int cannot represent non 32-bit signed integer value: %v", val)
		}
	case "Float":
		f, ok := number(val)
		if !ok {
			return refuse(path, "must be a Float, not %s", kind(val))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return refuse(path, "Float cannot represent non-finite value: %v", val)
		}
	case "ID":
		var s string
		switch v := val.(type) {
		case string:
			s = v
		default:
			// The spec's ID takes integers too; floats and the rest
			// it refuses.
			n, big, ok := wholeNumber(val)
			if !ok || big {
				return refuse(path, "must be an ID (a string or an integer), not %s", kind(val))
			}
			s = strconv.FormatInt(n, 10)
		}
		if max := c.cfg.MaxIDLength; max > 0 {
			if n := utf8.RuneCountInString(s); n > max {
				return refuse(path, "must be at most %d characters (got %d)", max, n)
			}
		}
	default:
		// A custom scalar's unmarshaler decides on its values, but no
		// scalar of this server takes a JSON object or array.
		switch val.(type) {
		case map[string]any, []any:
			return refuse(path, "must be a %s, not %s", def.Name, kind(val))
		}
	}
	return nil
}

// wholeNumber reads a whole number from a JSON number (json.Number, or
// float64 when decoded without UseNumber) or a Go integer: 1, -4, 1.0 and
// 1e3 are whole, 1.5 and "1" are not. big reports one beyond int64's
// range, whose n is then meaningless.
func wholeNumber(val any) (n int64, big, ok bool) {
	var f float64
	switch v := val.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, false, true
		}
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false, false
		}
	case float64:
		f = v
	case int:
		return int64(v), false, true
	case int32:
		return int64(v), false, true
	case int64:
		return v, false, true
	default:
		return 0, false, false
	}
	if math.IsInf(f, 0) || math.Abs(f) >= 1<<63 {
		return 0, true, true
	}
	if f != math.Trunc(f) {
		return 0, false, false
	}
	return int64(f), false, true
}

// number reads a JSON number or a Go number as a float64.
func number(val any) (float64, bool) {
	switch v := val.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		// Past float64's range reads as ±Inf, which the caller refuses;
		// below it, as 0.
		return f, true
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// kind names what a decoded JSON value is, for errors.
func kind(val any) string {
	switch val.(type) {
	case string, jsontext.InvalidString:
		return "a string"
	case json.Number, float64, float32, int, int32, int64:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", val)
}

// quoteIfOdd shows a value as it is unless it could be mistaken for
// something else in the message (empty, spaces, control characters).
func quoteIfOdd(s string) string {
	for _, r := range s {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

func refuse(path ast.Path, format string, args ...any) *gqlerror.Error {
	err := gqlerror.ErrorPathf(path, format, args...)
	err.Extensions = map[string]any{"code": CodeBadUserInput}
	return err
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
