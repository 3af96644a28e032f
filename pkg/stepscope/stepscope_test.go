package stepscope

import "testing"

func TestCloseRunsTheStepsCleanupsInReverse(t *testing.T) {
	var order []int
	s := New(t)
	s.Cleanup(func() { order = append(order, 1) })
	s.Cleanup(func() { order = append(order, 2) })
	if len(order) != 0 {
		t.Fatal("ran before Close")
	}
	s.Close()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("order %v, want [2 1]", order)
	}
	s.Close()
	if len(order) != 2 {
		t.Fatal("ran twice")
	}
}
