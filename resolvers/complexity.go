package resolvers

import "github.com/jobchat/jobchat/graph"

// The complexity of a connection is its page size times what each node
// costs, so that a query nesting pages inside pages (every conversation's
// last 100 messages, say) is refused before it runs, while the screens of a
// chat app stay far below the limit.
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
