package resolvers

import (
	"slices"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/jobchat/jobchat/graph"
)

// TestIntrospectionDirectiveLocations: every directive location that
// introspection shows, in __DirectiveLocation and in any directive, is one
// the GraphQL spec (October 2021) lists; graphql-js accepts more, so the
// list is checked here rather than by loading the schema in a client.
func TestIntrospectionDirectiveLocations(t *testing.T) {
	srv := handler.New(graph.NewExecutableSchema((&Resolver{}).Schema()))
	srv.AddTransport(transport.POST{})
	srv.Use(extension.Introspection{})
	c := client.New(srv)
	var out struct {
		Schema struct {
			Directives []struct {
				Name      string
				Locations []string
			}
		} `json:"__schema"`
		Type struct {
			EnumValues []struct{ Name string }
		} `json:"__type"`
	}
	err := c.Post(`{
		__schema { directives { name locations } }
		__type(name: "__DirectiveLocation") { enumValues(includeDeprecated: true) { name } }
	}`, &out)
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]bool{}
	for _, l := range specLocations {
		spec[string(l)] = true
	}
	var enum []string
	for _, v := range out.Type.EnumValues {
		enum = append(enum, v.Name)
		if !spec[v.Name] {
			t.Errorf("__DirectiveLocation has %s, which the spec does not list", v.Name)
		}
	}
	if len(enum) != len(specLocations) {
		t.Errorf("__DirectiveLocation has %d values, the spec %d: %v", len(enum), len(specLocations), enum)
	}
	if len(out.Schema.Directives) == 0 {
		t.Fatal("no directives")
	}
	for _, d := range out.Schema.Directives {
		for _, l := range d.Locations {
			if !spec[l] {
				t.Errorf("@%s lists location %s, which the spec does not", d.Name, l)
			}
		}
		if d.Name == "deprecated" && !slices.Contains(d.Locations, "ENUM_VALUE") {
			t.Errorf("@deprecated lost its locations: %v", d.Locations)
		}
	}
	// The generated schema, which the rest of the process shares, is
	// left as it was.
	if !slices.Contains(graph.NewExecutableSchema(graph.Config{}).Schema().Directives["deprecated"].Locations, "DIRECTIVE_DEFINITION") {
		t.Log("gqlparser's prelude no longer lists DIRECTIVE_DEFINITION on @deprecated; specSchema may be dropped")
	}
}
