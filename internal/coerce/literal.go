package coerce

import (
	"fmt"
	"strconv"

	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Literals checks the values written into a validated document (the
// validator has checked their types and set their ExpectedType) for what
// gqlparser's validation lets through, an Int outside 32 bits, and what
// the spec leaves to the server, IDs over MaxIDLength. The error names the
// argument's path as jobchat's resolvers do ("input.conversationId"), in
// the message and in extensions.field, with code BAD_USER_INPUT.
func (c *Checker) Literals(doc *ast.QueryDocument) *gqlerror.Error {
	for _, op := range doc.Operations {
		// A variable's default stands in for a value the request left out,
		// which Variables then does not see.
		for _, v := range op.VariableDefinitions {
			if err := c.literal(v.DefaultValue, "$"+v.Variable); err != nil {
				return err
			}
		}
		if err := c.selectionSet(op.SelectionSet); err != nil {
			return err
		}
	}
	for _, f := range doc.Fragments {
		if err := c.selectionSet(f.SelectionSet); err != nil {
			return err
		}
	}
	return nil
}

func (c *Checker) selectionSet(set ast.SelectionSet) *gqlerror.Error {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			for _, arg := range sel.Arguments {
				if err := c.literal(arg.Value, arg.Name); err != nil {
					return err
				}
			}
			if err := c.selectionSet(sel.SelectionSet); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := c.selectionSet(sel.SelectionSet); err != nil {
				return err
			}
		}
		// Spread fragments are checked where they are defined.
	}
	return nil
}

func (c *Checker) literal(v *ast.Value, field string) *gqlerror.Error {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case ast.ListValue:
		for i, child := range v.Children {
			if err := c.literal(child.Value, fmt.Sprintf("%s[%d]", field, i)); err != nil {
				return err
			}
		}
	case ast.ObjectValue:
		for _, child := range v.Children {
			if err := c.literal(child.Value, field+"."+child.Name); err != nil {
				return err
			}
		}
	case ast.IntValue, ast.StringValue, ast.BlockValue:
		if v.ExpectedType == nil {
			return nil
		}
		switch v.ExpectedType.Name() {
		case "Int":
			if _, err := strconv.ParseInt(v.Raw, 10, 32); err != nil {
				return literalError(v, field, "Int cannot represent non 32-bit signed integer value: %s", v.Raw)
			}
		case "ID":
			if max := c.cfg.MaxIDLength; max > 0 {
				if n := utf8.RuneCountInString(v.Raw); n > max {
					return literalError(v, field, "must be at most %d characters (got %d)", max, n)
				}
			}
		}
	}
	return nil
}

func literalError(v *ast.Value, field, format string, args ...any) *gqlerror.Error {
	err := gqlerror.ErrorPosf(v.Position, "%s: %s", field, fmt.Sprintf(format, args...))
	err.Extensions = map[string]any{"code": CodeBadUserInput, "field": field}
	return err
}
