package resolvers

import (
	"reflect"

	"github.com/jobchat/jobchat/graph"
)

// rootCost is what each field of Query and Mutation costs on top of its
// selection: each is at least one database round trip, which a selection's
// field count says nothing of. Aliases make one operation ask for a root
// field many times over (500 conversation(id:) lookups, 30 sendMessage
// calls), and the complexity limit must refuse such an operation as a
// whole before any of it runs: at the default limit of 5,000 fewer than 50
// root fields fit in one operation, while a chat screen asks for two.
const rootCost = 100

// The complexity of a connection is its page size times what each node
// costs, so that a query nesting pages inside pages (every conversation's
// last 100 messages, say) is refused before it runs, while the screens of a
// chat app stay far below the limit. Every root field costs rootCost more.
func complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	c.Query.Conversations = func(child int, first *int, _ *string, _ *bool, _ *string) int {
		return pageCost(child, first, 20)
	}
	c.Query.Messages = func(child int, _ string, first *int, _ *string, last *int, _ *string) int {
		return messagesCost(child, first, last)
	}
	c.Conversation.Messages = func(child int, first *int, _ *string, last *int, _ *string) int {
		return messagesCost(child, first, last)
	}
	addRootCost(&c.Query)
	addRootCost(&c.Mutation)
	return c
}

func messagesCost(child int, first, last *int) int {
	if first != nil {
		return pageCost(child, first, defaultPage)
	}
	return pageCost(child, last, defaultPage)
}

// pageCost charges for the page size asked (or the default), at least one.
func pageCost(child int, n *int, def int) int {
	size := def
	if n != nil {
		size = min(max(*n, 1), maxPageSize)
	}
	return 1 + size*child
}

// addRootCost adds rootCost to the complexity of every field of a root
// type's complexity struct (a struct of func(child int, args...) int): a
// field with no function of its own costs rootCost plus its selection, one
// with a function rootCost plus what that says. It goes by reflection so
// that a root field added to the schema is charged without anyone
// remembering to (TestRootFieldsCost holds it to that).
func addRootCost(fields any) {
	v := reflect.ValueOf(fields).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Func {
			continue
		}
		own := reflect.ValueOf(f.Interface())
		hasOwn := !own.IsNil()
		f.Set(reflect.MakeFunc(f.Type(), func(args []reflect.Value) []reflect.Value {
			cost := int(args[0].Int()) // the selection's complexity
			if hasOwn {
				cost = int(own.Call(args)[0].Int())
			}
			return []reflect.Value{reflect.ValueOf(cost + rootCost)}
		}))
	}
}
