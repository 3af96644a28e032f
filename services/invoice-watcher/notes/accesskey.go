package notes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// AccessKeyLen is the length of an access key: 44 characters, digits but
// for the issuer's CNPJ, which may be alphanumeric (NT 2025.001).
const AccessKeyLen = 44

// Why an access key is refused; AccessKeyError.Code says which.
var (
	ErrKeyMissing    = errors.New("access key missing")
	ErrKeyCharacters = errors.New("access key has characters other than digits")
	ErrKeyLength     = errors.New("access key does not have 44 digits")
	ErrKeyCheckDigit = errors.New("access key check digit does not match")
)

// AccessKeyError is a refused access key.
type AccessKeyError struct {
	// Kind is one of the ErrKey sentinels.
	Kind error
	// Detail says what exactly, e.g. "43 digits".
	Detail string
}

func (e *AccessKeyError) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *AccessKeyError) Unwrap() error { return e.Kind }

// Code is a stable name of the problem: missing, characters, length or
// check_digit.
func (e *AccessKeyError) Code() string {
	switch e.Kind {
	case ErrKeyMissing:
		return "missing"
	case ErrKeyCharacters:
		return "characters"
	case ErrKeyLength:
		return "length"
	}
	return "check_digit"
}

// AccessKey is a valid access key of a Brazilian fiscal document (NF-e,
// NFC-e, CT-e…) and what it encodes. The layout is cUF(2) AAMM(4) CNPJ(14)
// mod(2) serie(3) nNF(9) tpEmis(1) cNF(8) cDV(1).
type AccessKey struct {
	// Digits are the 44 characters: digits, and the uppercase letters of an
	// alphanumeric CNPJ at positions 7 to 18.
	Digits string
	// State is the IBGE code of the issuer's state (cUF), e.g. 35 for SP.
	State int
	// Year (two digits) and Month of issue.
	Year, Month int
	// Issuer is the issuer's CNPJ (or CPF, left-padded with zeros).
	Issuer string
	// Model is the document model: 55 NF-e, 65 NFC-e, 57 CT-e, 59 CF-e SAT.
	Model string
	// Series and Number are the document's series and number, without
	// leading zeros.
	Series, Number string
}

// ParseAccessKey validates s as an access key: 44 characters whose last is
// the mod-11 check digit of the other 43. Since NT 2025.001 the issuer's
// CNPJ inside it (characters 7 to 20) may be alphanumeric: its first 12
// characters 0-9 or A-Z (lowercase is read as uppercase), every character
// counting as its ASCII code minus 48 in the check digit. Spaces, dots and dashes between digits
// are dropped (keys are often printed in groups of four), as is a leading
// "NFe"/"CTe"/"CFe" of the XML's Id attribute. The error is an
// *AccessKeyError.
func ParseAccessKey(s string) (AccessKey, error) {
	digits, err := keyDigits(s)
	if err != nil {
		return AccessKey{}, err
	}
	if want := checkDigit(digits[:AccessKeyLen-1]); digits[AccessKeyLen-1] != want {
		return AccessKey{}, &AccessKeyError{Kind: ErrKeyCheckDigit,
			Detail: fmt.Sprintf("the last digit is %c, the other 43 give %c", digits[AccessKeyLen-1], want)}
	}
	atoi := func(from, to int) int { n, _ := strconv.Atoi(digits[from:to]); return n }
	return AccessKey{
		Digits: digits,
		State:  atoi(0, 2),
		Year:   atoi(2, 4),
		Month:  atoi(4, 6),
		Issuer: digits[6:20],
		Model:  digits[20:22],
		Series: trimZeros(digits[22:25]),
		Number: trimZeros(digits[25:34]),
	}, nil
}

// keyDigits returns the digits of s, checking that there are 44 of them and
// nothing else but separators.
func keyDigits(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &AccessKeyError{Kind: ErrKeyMissing, Detail: "empty"}
	}
	for _, prefix := range []string{"NFe", "NFCe", "CTe", "CFe"} {
		if len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			s = s[len(prefix):]
			break
		}
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		// The CNPJ's base (key positions 7 to 18) may hold letters.
		letterOK := n >= cnpjStart && n < cnpjStart+12
		switch {
		case '0' <= r && r <= '9', letterOK && ('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z'):
			if n++; n <= AccessKeyLen {
				b.WriteRune(unicode.ToUpper(r))
			}
		case r == '.' || r == '-' || unicode.IsSpace(r):
		default:
			return "", &AccessKeyError{Kind: ErrKeyCharacters, Detail: fmt.Sprintf("%q is not a digit", r)}
		}
	}
	if n != AccessKeyLen {
		return "", &AccessKeyError{Kind: ErrKeyLength, Detail: fmt.Sprintf("%d digits", n)}
	}
	return b.String(), nil
}

// cnpjStart is where the issuer's CNPJ starts in a key (0-based).
const cnpjStart = 6

// checkDigit is the mod-11 check digit of the 43 characters, each counting
// as its ASCII code minus 48 (a digit its value, 'A' 17): weights 2 to 9
// from the right, repeating; a remainder of 0 or 1 gives 0.
func checkDigit(digits string) byte {
	sum, w := 0, 2
	for i := len(digits) - 1; i >= 0; i-- {
		sum += int(digits[i]-'0') * w
		if w++; w > 9 {
			w = 2
		}
	}
	r := sum % 11
	if r < 2 {
		return '0'
	}
	return byte('0' + 11 - r)
}

// DocumentType names a model as Hiper's tipoDocumentoFiscal does, or "".
func DocumentType(model string) string {
	switch model {
	case "55":
		return "NFe"
	case "65":
		return "NFCe"
	case "57":
		return "CTe"
	case "59":
		return "CFe"
	}
	return ""
}

// trimZeros drops leading zeros, keeping one digit.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" && s != "" {
		return "0"
	}
	return t
}
