package main

import (
	"fmt"
	"testing"
)

const createConversation = `mutation($input: CreateConversationInput!) {
  createConversationForJob(input: $input) { id job { id title } client { id displayName } worker { id displayName } myRole lastSeq unreadCount }
}`

const sendMessage = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ` + messageFields + ` } }`

// openJob has the job-service open a conversation for job between the
// client and the worker.
func (e *env) openJob(tb testing.TB, job, client, worker, system string) conversation {
	tb.Helper()
	input := map[string]any{
		"jobId": job, "jobTitle": "Title of " + job,
		"client": map[string]any{"id": client, "displayName": "Name " + client},
		"worker": map[string]any{"id": worker, "displayName": "Name " + worker},
	}
	if system != "" {
		input["systemMessage"] = system
	}
	var out struct {
		Conv conversation `json:"createConversationForJob"`
	}
	e.do(tb, serviceToken(tb), createConversation, map[string]any{"input": input}).ok(tb, &out)
	return out.Conv
}

// sendText sends a TEXT message as token's user.
func (e *env) sendText(tb testing.TB, token, conversationID, text string) message {
	tb.Helper()
	var out struct {
		Msg message `json:"sendMessage"`
	}
	e.do(tb, token, sendMessage, map[string]any{"input": map[string]any{"conversationId": conversationID, "messageText": text}}).ok(tb, &out)
	return out.Msg
}

func TestFullFlow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ana, ben := userToken(t, "ana", "Ana"), userToken(t, "ben", "Ben")
		conv := e.openJob(t, "job-1", "ana", "ben", "Job 'Fix sink' has been accepted. Chat is now active.")
		if conv.LastSeq != 1 || conv.Client.ID != "ana" || conv.Worker.ID != "ben" || conv.MyRole != nil {
			t.Fatalf("created conversation: %+v", conv)
		}

		// Ben subscribes before anything is sent; Ana sends; Ben sees it live.
		ws := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
		// The subscription starts asynchronously; afterSeq makes the race with
		// the send below harmless, as it does for real clients.
		sub := ws.subscribe(`subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { `+messageFields+` } }`,
			map[string]any{"c": conv.ID, "after": conv.LastSeq})
		sent := e.sendText(t, ana, conv.ID, "Hello Ben")
		got := ws.nextMessage(sub)
		if got.ID != sent.ID || got.Seq != 2 || got.MessageText != "Hello Ben" || *got.SenderName != "Name ana" {
			t.Fatalf("live message: %+v, sent %+v", got, sent)
		}
		reply := e.sendText(t, ben, conv.ID, "Hi Ana")
		if got := ws.nextMessage(sub); got.Seq != 3 || got.ID != reply.ID {
			t.Fatalf("own message on the stream: %+v", got)
		}

		var inbox struct {
			Conversations struct {
				Edges []struct {
					Node struct {
						ID               string `json:"id"`
						UnreadCount      int    `json:"unreadCount"`
						MyRole           string `json:"myRole"`
						OtherParticipant struct {
							ID string `json:"id"`
						} `json:"otherParticipant"`
						LastMessage struct {
							Seq int `json:"seq"`
						} `json:"lastMessage"`
					} `json:"node"`
				} `json:"edges"`
			} `json:"conversations"`
			UnreadTotal int `json:"unreadTotal"`
		}
		e.do(t, ana, `{ conversations { edges { node { id unreadCount myRole otherParticipant { id } lastMessage { seq } } } } unreadTotal }`, nil).ok(t, &inbox)
		if n := len(inbox.Conversations.Edges); n != 1 {
			t.Fatalf("ana's inbox has %d conversations", n)
		}
		node := inbox.Conversations.Edges[0].Node
		// Ana read up to her own message (2); Ben's reply (3) is unread.
		if node.UnreadCount != 1 || inbox.UnreadTotal != 1 || node.MyRole != "CLIENT" || node.OtherParticipant.ID != "ben" || node.LastMessage.Seq != 3 {
			t.Fatalf("ana's inbox: %+v total %d", node, inbox.UnreadTotal)
		}

		var marked struct {
			MarkRead struct {
				UnreadCount int `json:"unreadCount"`
			} `json:"markRead"`
		}
		e.do(t, ana, `mutation($c: ID!) { markRead(conversationId: $c) { unreadCount } }`, map[string]any{"c": conv.ID}).ok(t, &marked)
		if marked.MarkRead.UnreadCount != 0 {
			t.Fatalf("unread after markRead: %d", marked.MarkRead.UnreadCount)
		}

		var page struct {
			Messages struct {
				Edges []struct {
					Node message `json:"node"`
				} `json:"edges"`
			} `json:"messages"`
		}
		e.do(t, ben, `query($c: ID!) { messages(conversationId: $c) { edges { node { `+messageFields+` } } } }`, map[string]any{"c": conv.ID}).ok(t, &page)
		var seqs []string
		for _, edge := range page.Messages.Edges {
			seqs = append(seqs, fmt.Sprintf("%d:%s:%v", edge.Node.Seq, edge.Node.MessageType, edge.Node.IsRead))
		}
		// Everything is read by the other side: ana marked all read, ben replied after ana's message.
		if got, want := fmt.Sprint(seqs), "[1:SYSTEM:true 2:TEXT:true 3:TEXT:true]"; got != want {
			t.Fatalf("history: got %s, want %s", got, want)
		}

		// Ben's phone drops off; Ana and the job-service keep writing; Ben
		// comes back with the last seq he saw and gets exactly what he missed,
		// then live messages again.
		_ = ws.conn.Close()
		e.sendText(t, ana, conv.ID, "Are you there?")
		var notice struct {
			Msg message `json:"postSystemMessage"`
		}
		e.do(t, serviceToken(t), `mutation($c: ID!) { postSystemMessage(conversationId: $c, messageText: "Payment is in escrow.") { `+messageFields+` } }`,
			map[string]any{"c": conv.ID}).ok(t, &notice)
		back := e.dial(t, "graphql-transport-ws", map[string]any{"authorization": "Bearer " + ben})
		sub = back.subscribe(`subscription($c: ID!, $after: Int) { messageAdded(conversationId: $c, afterSeq: $after) { `+messageFields+` } }`,
			map[string]any{"c": conv.ID, "after": 3})
		if m := back.nextMessage(sub); m.Seq != 4 || m.MessageText != "Are you there?" {
			t.Fatalf("first replayed message: %+v", m)
		}
		if m := back.nextMessage(sub); m.Seq != 5 || m.MessageType != "SYSTEM" || m.ID != notice.Msg.ID || m.SenderID != nil {
			t.Fatalf("second replayed message: %+v", m)
		}
		live := e.sendText(t, ana, conv.ID, "Great, see you Monday")
		if m := back.nextMessage(sub); m.Seq != 6 || m.ID != live.ID {
			t.Fatalf("live after resume: %+v", m)
		}

		// Ben has 3 unread (4, 5, 6); Ana none: her own message (6) moved her
		// pointer past the notice.
		var counts struct {
			Conversation struct {
				UnreadCount int `json:"unreadCount"`
			} `json:"conversation"`
			UnreadTotal int `json:"unreadTotal"`
		}
		for _, tc := range []struct {
			token string
			want  int
		}{{ben, 3}, {ana, 0}} {
			e.do(t, tc.token, `query($c: ID!) { conversation(id: $c) { unreadCount } unreadTotal }`, map[string]any{"c": conv.ID}).ok(t, &counts)
			if counts.Conversation.UnreadCount != tc.want || counts.UnreadTotal != tc.want {
				t.Fatalf("unread: got %+v, want %d", counts, tc.want)
			}
		}
		e.do(t, ben, `mutation($c: ID!) { markRead(conversationId: $c, upToSeq: 5) { unreadCount } }`, map[string]any{"c": conv.ID}).ok(t, &marked)
		if marked.MarkRead.UnreadCount != 1 {
			t.Fatalf("ben unread after markRead(5): %d, want 1", marked.MarkRead.UnreadCount)
		}
	})
}
