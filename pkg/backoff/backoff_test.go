package backoff

import (
	"testing"
	"time"
)

func TestStep(t *testing.T) {
	t.Parallel()
	e := Exp{Base: 100 * time.Millisecond, Max: 5 * time.Second}
	for n, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		6: 3200 * time.Millisecond, 7: 5 * time.Second, 1000: 5 * time.Second,
	} {
		if got := e.Step(n); got != want {
			t.Errorf("Step(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestJitteredStaysInItsHalf(t *testing.T) {
	t.Parallel()
	e := Exp{Base: time.Second, Max: time.Minute}
	for n := 1; n < 10; n++ {
		step := e.Step(n)
		for range 100 {
			if d := e.Jittered(n); d < step/2 || d > step {
				t.Fatalf("Jittered(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
}
