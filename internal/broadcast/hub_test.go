package broadcast_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jobchat/jobchat/internal/broadcast"
)

type newBrokerFunc func(tb testing.TB) (*countingBroker, func(topic string) int)

// TestHub runs the Hub behaviour suite against every broker.
func TestHub(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, newBroker newBrokerFunc)
	}{
		{"publish reaches the topic's subscribers only", testFanout},
		{"order is preserved", testOrder},
		{"publish right after Subscribe returns is received", testSubscribeThenPublish},
		{"first subscriber subscribes the broker and last unsubscribes", testBrokerSubscription},
		{"slow subscriber is cut off without blocking others", testSlowSubscriber},
		{"cutting off the last subscriber releases the topic", testSlowLastSubscriber},
		{"subscription close", testSubscriptionClose},
		{"hub close ends subscriptions", testHubClose},
		{"close concurrent with publish and subscribe", testConcurrentClose},
		{"no goroutines left after close", testNoLeak},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			be.require(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, be.newBroker) })
			}
		})
	}
}

func testFanout(t *testing.T, newBroker newBrokerFunc) {
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{})
	inA := []*broadcast.Subscription{subscribe(t, h, "a"), subscribe(t, h, "a"), subscribe(t, h, "a")}
	inB := subscribe(t, h, "b")

	publish(t, h, "a", "to a")
	for i, s := range inA {
		if got := recv(t, s); got != "to a" {
			t.Errorf("subscriber %d of a got %q, want %q", i, got, "to a")
		}
	}
	// b's first payload must be its own: one published to a would have been
	// handed over before it.
	publish(t, h, "b", "to b")
	if got := recv(t, inB); got != "to b" {
		t.Errorf("subscriber of b got %q, want %q", got, "to b")
	}

	st := h.Stats()
	if st.Topics != 2 || st.Subscribers != 4 || st.Delivered != 4 || st.Dropped != 0 {
		t.Errorf("stats = %+v, want 2 topics, 4 subscribers, 4 delivered, 0 dropped", st)
	}
}

func testOrder(t *testing.T, newBroker newBrokerFunc) {
	const n = 500
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{BufferSize: n})
	subs := []*broadcast.Subscription{subscribe(t, h, "room"), subscribe(t, h, "room")}

	for i := range n {
		publish(t, h, "room", strconv.Itoa(i))
	}
	for j, s := range subs {
		for i := range n {
			if got, want := recv(t, s), strconv.Itoa(i); got != want {
				t.Fatalf("subscriber %d: payload %d is %q, want %q", j, i, got, want)
			}
		}
	}
}

func testSubscribeThenPublish(t *testing.T, newBroker newBrokerFunc) {
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{})
	// Fresh topics each time, so every Subscribe goes to the broker; a
	// Subscribe that returned before the broker was ready would lose the
	// payload sooner or later.
	for i := range 50 {
		topic := fmt.Sprintf("room-%d", i)
		s := subscribe(t, h, topic)
		publish(t, h, topic, "first")
		if got := recv(t, s); got != "first" {
			t.Fatalf("%s: got %q, want %q", topic, got, "first")
		}
	}
}

func testBrokerSubscription(t *testing.T, newBroker newBrokerFunc) {
	b, remote := newBroker(t)
	h := newHub(t, b, broadcast.Config{})
	assertCalls := func(tb testing.TB, wantSub, wantUnsub int) {
		tb.Helper()
		if sub, unsub := b.calls("room"); sub != wantSub || unsub != wantUnsub {
			tb.Fatalf("broker calls: %d subscribes, %d unsubscribes; want %d, %d", sub, unsub, wantSub, wantUnsub)
		}
	}

	if n := remote("room"); n != 0 {
		t.Fatalf("subscribed before any subscriber: %d", n)
	}
	s1 := subscribe(t, h, "room")
	assertCalls(t, 1, 0)
	if n := remote("room"); n != 1 {
		t.Fatalf("after first Subscribe returned, transport sees %d subscribers, want 1", n)
	}
	s2 := subscribe(t, h, "room")
	s3 := subscribe(t, h, "room")
	assertCalls(t, 1, 0)

	s1.Close()
	s2.Close()
	assertCalls(t, 1, 0)
	if n := remote("room"); n != 1 {
		t.Fatalf("with one subscriber left, transport sees %d, want 1", n)
	}

	s3.Close()
	assertCalls(t, 1, 1)
	eventually(t, "transport unsubscribed after last subscriber left", func() bool { return remote("room") == 0 })

	s4 := subscribe(t, h, "room")
	assertCalls(t, 2, 1)
	publish(t, h, "room", "again")
	if got := recv(t, s4); got != "again" {
		t.Fatalf("after resubscribing got %q, want %q", got, "again")
	}
}

func testSlowSubscriber(t *testing.T, newBroker newBrokerFunc) {
	const buffer = 4
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{BufferSize: buffer})
	slow := subscribe(t, h, "room")
	fast := subscribe(t, h, "room")

	// Waiting for fast to receive each payload before the next keeps it
	// within its buffer however the goroutines are scheduled; slow never
	// reads, so the fifth payload overflows it.
	for i := range 3 * buffer {
		publish(t, h, "room", strconv.Itoa(i))
		if got, want := recv(t, fast), strconv.Itoa(i); got != want {
			t.Fatalf("fast subscriber got %q, want %q", got, want)
		}
	}

	for i := range buffer {
		if got, want := recv(t, slow), strconv.Itoa(i); got != want {
			t.Fatalf("slow subscriber's buffered payload %d is %q, want %q", i, got, want)
		}
	}
	if err := ended(t, slow); !errors.Is(err, broadcast.ErrSlowSubscriber) {
		t.Fatalf("slow subscriber ended with %v, want %v", err, broadcast.ErrSlowSubscriber)
	}
	slow.Close() // after a cut-off, Close must be a harmless no-op
	if err := slow.Err(); !errors.Is(err, broadcast.ErrSlowSubscriber) {
		t.Fatalf("Close changed Err to %v", err)
	}

	if st := h.Stats(); st.Dropped != 1 || st.Subscribers != 1 {
		t.Errorf("stats = %+v, want 1 dropped, 1 subscriber", st)
	}
	publish(t, h, "room", "after")
	if got := recv(t, fast); got != "after" {
		t.Fatalf("fast subscriber got %q after the cut-off, want %q", got, "after")
	}
}

func testSlowLastSubscriber(t *testing.T, newBroker newBrokerFunc) {
	b, remote := newBroker(t)
	h := newHub(t, b, broadcast.Config{BufferSize: 1})
	s := subscribe(t, h, "room")

	publish(t, h, "room", "fits")
	publish(t, h, "room", "overflows")
	waitCutOff(t, h, 1)
	if err := ended(t, s); !errors.Is(err, broadcast.ErrSlowSubscriber) {
		t.Fatalf("ended with %v, want %v", err, broadcast.ErrSlowSubscriber)
	}
	eventually(t, "broker unsubscribed", func() bool {
		_, unsub := b.calls("room")
		return unsub == 1 && remote("room") == 0
	})
	if st := h.Stats(); st.Topics != 0 || st.Subscribers != 0 || st.Dropped != 1 {
		t.Errorf("stats = %+v, want no topics or subscribers, 1 dropped", st)
	}

	again := subscribe(t, h, "room")
	publish(t, h, "room", "back")
	if got := recv(t, again); got != "back" {
		t.Fatalf("new subscriber got %q, want %q", got, "back")
	}
}

func testSubscriptionClose(t *testing.T, newBroker newBrokerFunc) {
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{})
	leaving := subscribe(t, h, "room")
	staying := subscribe(t, h, "room")

	leaving.Close()
	leaving.Close()
	if err := ended(t, leaving); err != nil {
		t.Fatalf("closed subscription has Err %v, want nil", err)
	}
	publish(t, h, "room", "still here")
	if got := recv(t, staying); got != "still here" {
		t.Fatalf("remaining subscriber got %q, want %q", got, "still here")
	}
	if st := h.Stats(); st.Subscribers != 1 {
		t.Errorf("stats = %+v, want 1 subscriber", st)
	}
}

func testHubClose(t *testing.T, newBroker newBrokerFunc) {
	b, remote := newBroker(t)
	h := newHub(t, b, broadcast.Config{})
	subs := []*broadcast.Subscription{subscribe(t, h, "a"), subscribe(t, h, "a"), subscribe(t, h, "b")}

	if err := h.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i, s := range subs {
		if err := ended(t, s); !errors.Is(err, broadcast.ErrHubClosed) {
			t.Errorf("subscription %d ended with %v, want %v", i, err, broadcast.ErrHubClosed)
		}
		s.Close()
		if err := s.Err(); !errors.Is(err, broadcast.ErrHubClosed) {
			t.Errorf("subscription %d: Close after hub close changed Err to %v", i, err)
		}
	}
	if err := h.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}

	ctx := context.Background()
	if _, err := h.Subscribe(ctx, "a"); !errors.Is(err, broadcast.ErrHubClosed) {
		t.Errorf("subscribe after close: %v, want %v", err, broadcast.ErrHubClosed)
	}
	if err := h.Publish(ctx, "a", []byte("x")); !errors.Is(err, broadcast.ErrHubClosed) {
		t.Errorf("publish after close: %v, want %v", err, broadcast.ErrHubClosed)
	}
	if st := h.Stats(); st.Topics != 0 || st.Subscribers != 0 {
		t.Errorf("stats after close = %+v, want none", st)
	}
	eventually(t, "transport unsubscribed after close", func() bool { return remote("a") == 0 && remote("b") == 0 })
}

func testConcurrentClose(t *testing.T, newBroker newBrokerFunc) {
	b, _ := newBroker(t)
	h := newHub(t, b, broadcast.Config{BufferSize: 8})
	ctx := context.Background()
	stop := make(chan struct{})
	closing := func(err error) bool {
		return errors.Is(err, broadcast.ErrHubClosed) || errors.Is(err, broadcast.ErrBrokerClosed)
	}

	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := h.Publish(ctx, "room", []byte(fmt.Sprintf("%d-%d", p, i)))
				if err != nil && !closing(err) {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for {
				s, err := h.Subscribe(ctx, "room")
				if err != nil {
					if !closing(err) {
						t.Errorf("subscribe: %v", err)
					}
					return
				}
			read:
				for range 3 {
					select {
					case _, ok := <-s.C():
						if !ok {
							break read
						}
					case <-stop:
						break read
					}
				}
				// Two closers race each other and delivery.
				var closers sync.WaitGroup
				closers.Go(s.Close)
				closers.Go(s.Close)
				closers.Wait()
			}
		})
	}

	eventually(t, "payloads flowing", func() bool { return h.Stats().Delivered >= 100 })
	var closers sync.WaitGroup
	for range 2 {
		closers.Go(func() {
			if err := h.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	closers.Wait()
	close(stop)
	waitGroup(t, &wg)
}

func testNoLeak(t *testing.T, newBroker newBrokerFunc) {
	b, _ := newBroker(t)
	before := runtime.NumGoroutine()

	h := newHub(t, b, broadcast.Config{BufferSize: 1})
	s := subscribe(t, h, "room")
	subscribe(t, h, "other")
	publish(t, h, "room", "fits")
	publish(t, h, "room", "overflows") // the cut-off starts a release goroutine
	waitCutOff(t, h, 1)
	if err := ended(t, s); !errors.Is(err, broadcast.ErrSlowSubscriber) {
		t.Fatalf("ended with %v, want %v", err, broadcast.ErrSlowSubscriber)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	eventually(t, fmt.Sprintf("goroutines back to %d, the count before the hub", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// waitCutOff waits until n subscribers have been cut off. Until then the
// test must not read from them: reading would make room in their buffers
// when delivery is asynchronous, as with Redis.
func waitCutOff(tb testing.TB, h *broadcast.Hub, n uint64) {
	tb.Helper()
	eventually(tb, fmt.Sprintf("%d subscribers cut off", n), func() bool { return h.Stats().Dropped >= n })
}

func waitGroup(tb testing.TB, wg *sync.WaitGroup) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	eventually(tb, "goroutines finished", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

func TestHubSubscribeCancelledWhileTopicBusy(t *testing.T) {
	release := make(chan struct{})
	b := newCountingBroker(broadcast.NewMemoryBroker())
	first := true
	// Only the first broker Subscribe blocks, holding the topic's gate; the
	// flag is read under the hub's serialisation of broker calls per topic.
	b.beforeSubscribe = func(ctx context.Context, topic string) error {
		if first {
			first = false
			<-release
		}
		return nil
	}
	h := newHub(t, b, broadcast.Config{})

	type result struct {
		s   *broadcast.Subscription
		err error
	}
	results := make(chan result, 2)
	go func() {
		s, err := h.Subscribe(context.Background(), "room")
		results <- result{s, err}
	}()
	eventually(t, "first Subscribe reached the broker", func() bool {
		sub, _ := b.calls("room")
		return sub == 1
	})

	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() {
		_, err := h.Subscribe(ctx, "room")
		cancelled <- err
	}()
	go func() {
		s, err := h.Subscribe(context.Background(), "room")
		results <- result{s, err}
	}()
	cancel()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Subscribe returned %v, want context.Canceled", err)
		}
	case r := <-results:
		t.Fatalf("a Subscribe finished while the broker was blocked: %v", r.err)
	case <-time.After(wait):
		t.Fatalf("cancelled Subscribe still blocked after %v", wait)
	}

	close(release)
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("subscribe: %v", r.err)
		}
		t.Cleanup(r.s.Close)
	}
	if sub, _ := b.calls("room"); sub != 1 {
		t.Errorf("broker Subscribe called %d times, want 1", sub)
	}
	if st := h.Stats(); st.Subscribers != 2 {
		t.Errorf("stats = %+v, want 2 subscribers", st)
	}
}

func TestHubBrokerSubscribeFails(t *testing.T) {
	boom := errors.New("boom")
	b := newCountingBroker(broadcast.NewMemoryBroker())
	fail := true
	b.beforeSubscribe = func(context.Context, string) error {
		if fail {
			fail = false
			return boom
		}
		return nil
	}
	h := newHub(t, b, broadcast.Config{})

	if _, err := h.Subscribe(context.Background(), "room"); !errors.Is(err, boom) {
		t.Fatalf("subscribe: %v, want %v", err, boom)
	}
	if st := h.Stats(); st.Topics != 0 || st.Subscribers != 0 {
		t.Fatalf("stats after failed subscribe = %+v, want none", st)
	}
	s := subscribe(t, h, "room")
	if sub, _ := b.calls("room"); sub != 2 {
		t.Fatalf("broker Subscribe called %d times, want a retry (2)", sub)
	}
	publish(t, h, "room", "ok")
	if got := recv(t, s); got != "ok" {
		t.Fatalf("got %q, want %q", got, "ok")
	}
}

func TestNewHubBrokerInUse(t *testing.T) {
	b := broadcast.NewMemoryBroker()
	newHub(t, b, broadcast.Config{})
	if _, err := broadcast.NewHub(b, broadcast.Config{}); err == nil {
		t.Fatal("second hub on one broker: no error")
	}
}

func TestMemoryBroker(t *testing.T) {
	type delivery struct{ topic, payload string }
	ctx := context.Background()
	cases := []struct {
		name      string
		subscribe []string
		publish   string
		want      []delivery
	}{
		{"subscribed topic", []string{"a"}, "a", []delivery{{"a", "p"}}},
		{"other topic", []string{"a"}, "b", nil},
		{"nothing subscribed", nil, "a", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := broadcast.NewMemoryBroker()
			t.Cleanup(func() { _ = b.Close() })
			var got []delivery
			if err := b.Start(func(topic string, payload []byte) {
				got = append(got, delivery{topic, string(payload)})
			}); err != nil {
				t.Fatalf("start: %v", err)
			}
			for _, topic := range c.subscribe {
				if err := b.Subscribe(ctx, topic); err != nil {
					t.Fatalf("subscribe: %v", err)
				}
			}
			if err := b.Publish(ctx, c.publish, []byte("p")); err != nil {
				t.Fatalf("publish: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("delivered %v, want %v", got, c.want)
			}
		})
	}

	t.Run("payload is copied", func(t *testing.T) {
		b := broadcast.NewMemoryBroker()
		var got []byte
		_ = b.Start(func(_ string, payload []byte) { got = payload })
		_ = b.Subscribe(ctx, "a")
		buf := []byte("original")
		if err := b.Publish(ctx, "a", buf); err != nil {
			t.Fatalf("publish: %v", err)
		}
		copy(buf, "reused!!")
		if string(got) != "original" {
			t.Errorf("receiver sees %q after the publisher reused its buffer", got)
		}
	})

	t.Run("closed", func(t *testing.T) {
		b := broadcast.NewMemoryBroker()
		_ = b.Close()
		if err := b.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if err := b.Publish(ctx, "a", nil); !errors.Is(err, broadcast.ErrBrokerClosed) {
			t.Errorf("publish after close: %v", err)
		}
		if err := b.Subscribe(ctx, "a"); !errors.Is(err, broadcast.ErrBrokerClosed) {
			t.Errorf("subscribe after close: %v", err)
		}
	})
}
