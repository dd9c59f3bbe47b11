package resolvers

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobchat/jobchat/db"
	"github.com/jobchat/jobchat/graph/model"
)

// Cursors are opaque to clients; inside they are "m:<seq>" for messages and
// "c:<activity>|<id>" for conversations.

func messageCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("m:" + strconv.FormatInt(seq, 10)))
}

func parseMessageCursor(field string, s *string) (int64, error) {
	if s == nil {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*s)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(raw), "m:"); ok {
			if seq, err := strconv.ParseInt(rest, 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, badInput(field, "is not a message cursor from this API")
}

func conversationCursor(c *db.Conversation) string {
	return base64.RawURLEncoding.EncodeToString([]byte("c:" + c.ActivityAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func parseConversationCursor(field string, s *string) (*db.ConversationCursor, error) {
	if s == nil {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*s)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(raw), "c:"); ok {
			if at, id, ok := strings.Cut(rest, "|"); ok && id != "" {
				if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
					return &db.ConversationCursor{ActivityAt: t.UTC(), ID: id}, nil
				}
			}
		}
	}
	return nil, badInput(field, "is not a conversation cursor from this API")
}

func pageSize(field string, n *int, def int) (int, error) {
	if n == nil {
		return def, nil
	}
	if *n < 0 || *n > maxPageSize {
		return 0, badInput(field, "must be between 0 and %d (got %d)", maxPageSize, *n)
	}
	return *n, nil
}

// messagePage resolves a Relay page of a conversation's history. With
// first/after it reads forward from after; otherwise it reads back from
// before (or from the newest message), which is what a chat screen shows.
func (r *Resolver) messagePage(ctx context.Context, conversationID string, first *int, after *string, last *int, before *string) (*model.MessageConnection, error) {
	if first != nil && last != nil {
		return nil, badInput("last", "cannot be combined with first; page forward with first/after or back with last/before")
	}
	afterSeq, err := parseMessageCursor("after", after)
	if err != nil {
		return nil, err
	}
	beforeSeq, err := parseMessageCursor("before", before)
	if err != nil {
		return nil, err
	}
	forward := first != nil || (after != nil && last == nil)
	var limit int
	if forward {
		limit, err = pageSize("first", first, defaultPage)
	} else {
		limit, err = pageSize("last", last, defaultPage)
	}
	if err != nil {
		return nil, err
	}

	conn := &model.MessageConnection{Edges: []*model.MessageEdge{}, PageInfo: &model.PageInfo{}}
	if limit == 0 {
		return conn, nil
	}
	ms, err := db.SelectMessages(ctx, r.db, db.MessageFilter{
		ConversationID: conversationID,
		AfterSeq:       afterSeq,
		BeforeSeq:      beforeSeq,
		Limit:          limit + 1,
		Newest:         !forward,
	})
	if err != nil {
		return nil, fmt.Errorf("load messages: %w", err)
	}
	more := len(ms) > limit
	if forward {
		if more {
			ms = ms[:limit]
		}
		conn.PageInfo.HasNextPage = more
		conn.PageInfo.HasPreviousPage = afterSeq > 0
	} else {
		if more {
			ms = ms[len(ms)-limit:]
		}
		conn.PageInfo.HasPreviousPage = more
		conn.PageInfo.HasNextPage = beforeSeq > 0
	}
	for _, m := range ms {
		conn.Edges = append(conn.Edges, &model.MessageEdge{Cursor: messageCursor(m.Seq), Node: m})
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}
