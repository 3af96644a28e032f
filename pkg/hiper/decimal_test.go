package hiper

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// String must write what decimal.Decimal's String writes, for every value.
func TestDecimalStringIsDecimals(t *testing.T) {
	t.Parallel()
	values := []decimal.Decimal{
		decimal.Zero, decimal.New(0, -2), decimal.New(0, 3), decimal.New(5, -2), decimal.New(-5, -2),
		decimal.New(1500, -2), decimal.New(-1500, -2), decimal.New(100, 0), decimal.New(7, 2),
		decimal.New(123456789012345678, -18), decimal.New(-999999999999999999, -9),
		decimal.New(1, -18), decimal.New(1, -19), decimal.New(1<<62, -3), decimal.New(-1<<62, 0),
		decimal.RequireFromString("123456789012345678901234567890.125"),
		decimal.RequireFromString("-0.000000000000000000000001"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		values = append(values, decimal.New(rng.Int64N(1<<uint(rng.IntN(62)+1))-rng.Int64N(1<<40), -int32(rng.IntN(22))+2))
	}
	for _, v := range values {
		if got, want := (Decimal{v}).String(), v.String(); got != want {
			t.Fatalf("String of %s (coefficient %s, exponent %d) = %q, want %q", want, v.Coefficient(), v.Exponent(), got, want)
		}
	}
}
