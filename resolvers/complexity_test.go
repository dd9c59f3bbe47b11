package resolvers

import (
	"reflect"
	"testing"
)

// TestRootFieldsCost: every field of Query and Mutation costs rootCost on
// top of its selection, including fields added to the schema after this
// test was written; connections keep their page-size cost.
func TestRootFieldsCost(t *testing.T) {
	c := complexity()
	for _, root := range []any{c.Query, c.Mutation} {
		v := reflect.ValueOf(root)
		for i := range v.NumField() {
			f := v.Field(i)
			name := v.Type().Name() + "." + v.Type().Field(i).Name
			if f.Kind() != reflect.Func || f.IsNil() {
				t.Errorf("%s has no complexity function", name)
				continue
			}
			args := []reflect.Value{reflect.ValueOf(3)}
			for j := 1; j < f.Type().NumIn(); j++ {
				args = append(args, reflect.Zero(f.Type().In(j)))
			}
			if got := int(f.Call(args)[0].Int()); got < rootCost+3 {
				t.Errorf("%s costs %d for a selection of 3, want at least %d", name, got, rootCost+3)
			}
		}
	}
	first := 100
	if got := c.Query.Conversations(2, &first, nil, nil, nil); got != rootCost+1+100*2 {
		t.Errorf("conversations(first: 100) with 2 fields costs %d", got)
	}
	if got := c.Query.Conversation(5, "c1"); got != rootCost+5 {
		t.Errorf("conversation(id:) with 5 fields costs %d", got)
	}
}
