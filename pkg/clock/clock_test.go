package clock

import (
	"testing"
	"time"
)

func TestFakeFiresWaitersWhenDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a := f.After(10 * time.Second)
	b := f.After(5 * time.Second)
	if f.Waiters() != 2 {
		t.Fatalf("waiters = %d", f.Waiters())
	}
	f.Advance(4 * time.Second)
	select {
	case <-a:
		t.Fatal("a fired early")
	case <-b:
		t.Fatal("b fired early")
	default:
	}
	f.Advance(time.Second)
	if got := <-b; !got.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("b fired at %v", got)
	}
	f.Set(start) // never backwards
	if !f.Now().Equal(start.Add(5 * time.Second)) {
		t.Fatalf("clock went backwards to %v", f.Now())
	}
	f.Advance(time.Hour)
	<-a
	if f.Waiters() != 0 {
		t.Fatalf("waiters left: %d", f.Waiters())
	}
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) must fire at once")
	}
}
