package resolvers

import (
	"slices"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/jobchat/jobchat/graph"
)

// specLocations are the directive locations the GraphQL spec (October
// 2021) lists in __DirectiveLocation. gqlparser's prelude adds
// DIRECTIVE_DEFINITION, from a proposal the spec has not merged, to that
// enum and to @deprecated, and clients that build a schema from
// introspection by the spec (graphql-core 3.2, so Python's gql) fail on it.
var specLocations = []ast.DirectiveLocation{
	// Executable locations.
	ast.LocationQuery, ast.LocationMutation, ast.LocationSubscription, ast.LocationField,
	ast.LocationFragmentDefinition, ast.LocationFragmentSpread, ast.LocationInlineFragment,
	ast.LocationVariableDefinition,
	// Type system locations.
	ast.LocationSchema, ast.LocationScalar, ast.LocationObject, ast.LocationFieldDefinition,
	ast.LocationArgumentDefinition, ast.LocationInterface, ast.LocationUnion, ast.LocationEnum,
	ast.LocationEnumValue, ast.LocationInputObject, ast.LocationInputFieldDefinition,
}

// specSchema is jobchat's schema as introspection shows it: the generated
// one with only specLocations in __DirectiveLocation and in every
// directive's locations. It is a copy; the generated schema, shared by
// everything in the process, is left alone. No query document can use a
// location it drops, so validation is the same with either.
func specSchema() *ast.Schema {
	parsed := graph.NewExecutableSchema(graph.Config{}).Schema()
	s := *parsed
	s.Types = make(map[string]*ast.Definition, len(parsed.Types))
	for name, def := range parsed.Types {
		if name == "__DirectiveLocation" {
			d := *def
			d.EnumValues = slices.DeleteFunc(slices.Clone(def.EnumValues), func(v *ast.EnumValueDefinition) bool {
				return !slices.Contains(specLocations, ast.DirectiveLocation(v.Name))
			})
			def = &d
		}
		s.Types[name] = def
	}
	s.Directives = make(map[string]*ast.DirectiveDefinition, len(parsed.Directives))
	for name, dir := range parsed.Directives {
		d := *dir
		d.Locations = slices.DeleteFunc(slices.Clone(dir.Locations), func(l ast.DirectiveLocation) bool {
			return !slices.Contains(specLocations, l)
		})
		s.Directives[name] = &d
	}
	return &s
}
