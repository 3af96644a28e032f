package hiper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Hiper's dates are in America/Sao_Paulo; images may lack a zoneinfo.

	"github.com/shopspring/decimal"
)

// Decimal is an exact decimal number. It decodes a JSON number, a quoted
// number ("99", seen in Hiper's own examples) or null (zero), and encodes as
// a bare JSON number, never going through float64.
type Decimal struct {
	decimal.Decimal
}

// NewDecimal parses s ("49.90", "-3", "0.001").
func NewDecimal(s string) (Decimal, error) {
	d, err := parseDecimal(strings.TrimSpace(s))
	if err != nil {
		return Decimal{}, fmt.Errorf("parse decimal %q: %w", s, err)
	}
	return Decimal{d}, nil
}

// maxDecimalExponent bounds the exponent of a Decimal. "1e2147483647" is a
// dozen bytes of input but two gigabytes of digits once printed: an answer
// must not be able to stall or exhaust a service that way. No real price,
// quantity or measure comes near the bound.
const maxDecimalExponent = 1000

func parseDecimal(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, err
	}
	if e := d.Exponent(); e > maxDecimalExponent || e < -maxDecimalExponent {
		return decimal.Decimal{}, fmt.Errorf("exponent %d out of range", e)
	}
	return d, nil
}

// MustDecimal is NewDecimal for constants; it panics on a malformed s.
func MustDecimal(s string) Decimal {
	d, err := NewDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DecimalFromInt returns n as a Decimal.
func DecimalFromInt(n int64) Decimal { return Decimal{decimal.NewFromInt(n)} }

// String is decimal.Decimal's String (the fraction's trailing zeros
// trimmed) without math/big for what Hiper sends, a coefficient of up to 18
// digits and at most 18 decimal places: the catalog poller formats five
// decimals per product, and big.Int's formatting was 2 % of its CPU.
func (d Decimal) String() string {
	exp := d.Exponent()
	// NumDigits is exact and allocation-free below 2^53; a coefficient it
	// counts at 18 digits or fewer fits in an int64.
	if exp > 0 || exp < -18 || d.NumDigits() > 18 {
		return d.Decimal.String()
	}
	c := d.CoefficientInt64()
	var buf [48]byte
	b := buf[:0]
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	// The digits, with zeros ahead so that there is an integer part.
	var digits [40]byte
	places := int(-exp)
	ds := strconv.AppendInt(digits[:0], c, 10)
	if pad := places + 1 - len(ds); pad > 0 {
		copy(digits[pad:], ds)
		for i := range pad {
			digits[i] = '0'
		}
		ds = digits[:len(ds)+pad]
	}
	whole, frac := ds[:len(ds)-places], ds[len(ds)-places:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	b = append(b, whole...)
	if len(frac) > 0 {
		b = append(append(b, '.'), frac...)
	}
	return string(b)
}

// MarshalJSON encodes d as a bare JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON accepts a number, a quoted number or null.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*d = Decimal{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode decimal: %w", err)
		}
		if strings.TrimSpace(s) == "" {
			*d = Decimal{}
			return nil
		}
		b = []byte(s)
	}
	v, err := parseDecimal(string(b))
	if err != nil {
		return fmt.Errorf("decode decimal %q: %w", b, err)
	}
	*d = Decimal{v}
	return nil
}

// Bool decodes a JSON boolean, the strings "true"/"false" (seen in Hiper's
// examples) or null (false).
type Bool bool

// UnmarshalJSON accepts true, false, "true", "false" and null.
func (v *Bool) UnmarshalJSON(b []byte) error {
	switch strings.ToLower(strings.Trim(string(bytes.TrimSpace(b)), `"`)) {
	case "true", "1":
		*v = true
	case "false", "0", "null", "":
		*v = false
	default:
		return fmt.Errorf("decode boolean %q", b)
	}
	return nil
}

// Digits is a numeric code sent as a string of digits (CEP, IBGE code,
// document). It decodes a JSON string or number, since Hiper's examples send
// both, and encodes as a string so leading zeros survive.
type Digits string

// UnmarshalJSON accepts a string, a number or null.
func (v *Digits) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*v = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decode digits: %w", err)
		}
		*v = Digits(s)
	default:
		if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
			return fmt.Errorf("decode digits %q: not a whole number", b)
		}
		*v = Digits(b)
	}
	return nil
}

// Location is Hiper's time zone: its dates carry no offset.
var Location = mustLoad("America/Sao_Paulo")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Hiper's date layouts: dd/MM/yyyy HH:mm:ss, and dd/MM/yyyy for some fields.
const (
	DateTimeLayout = "02/01/2006 15:04:05"
	DateLayout     = "02/01/2006"
)

// Time is a Hiper date, in America/Sao_Paulo. It decodes either layout, an
// empty string or null (the zero Time), and encodes the long layout.
type Time struct {
	time.Time
}

// MarshalJSON encodes t as "dd/MM/yyyy HH:mm:ss" in Hiper's time zone, or
// null when t is zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.In(Location).Format(DateTimeLayout) + `"`), nil
}

// UnmarshalJSON decodes "dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy", "" or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode date: %w", err)
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// ParseTime parses a Hiper date in either layout; "" is the zero Time.
func ParseTime(s string) (Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Time{}, nil
	}
	for _, layout := range []string{DateTimeLayout, DateLayout} {
		if v, err := time.ParseInLocation(layout, s, Location); err == nil {
			return Time{v}, nil
		}
	}
	return Time{}, fmt.Errorf("decode date %q: want dd/MM/yyyy HH:mm:ss", s)
}
