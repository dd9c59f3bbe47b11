package broadcast_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jobchat/jobchat/internal/broadcast"
)

// BenchmarkHubFanout measures one publish reaching every local subscriber
// of a busy conversation: each iteration waits until all subscribers have
// read the payload, so no subscriber falls behind and none is cut off.
func BenchmarkHubFanout(b *testing.B) {
	const subscribers = 100
	h := newHub(b, broadcast.NewMemoryBroker(), broadcast.Config{})

	var received sync.WaitGroup
	var readers sync.WaitGroup
	for range subscribers {
		s := subscribe(b, h, "room")
		readers.Go(func() {
			for range s.C() {
				received.Done()
			}
		})
	}

	ctx := context.Background()
	payload := []byte(`{"id":"1","seq":1,"body":"hello"}`)
	b.ReportAllocs()
	for b.Loop() {
		received.Add(subscribers)
		if err := h.Publish(ctx, "room", payload); err != nil {
			b.Fatalf("publish: %v", err)
		}
		received.Wait()
	}
	b.StopTimer()

	if st := h.Stats(); st.Dropped != 0 {
		b.Fatalf("%d subscribers cut off", st.Dropped)
	}
	if err := h.Close(); err != nil {
		b.Fatalf("close: %v", err)
	}
	readers.Wait()
}
