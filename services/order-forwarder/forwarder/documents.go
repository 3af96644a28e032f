package forwarder

import "strings"

// Field checks of hiper-api.md §4 that need more than a length.

// stripPunctuation removes what people and stores put between the digits
// of a document, a CEP or a state registration.
func stripPunctuation(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '-', '/', ' ', '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// allSame catches 000.000.000-00 and its kin, which pass the check-digit
// arithmetic but are no one's document.
func allSame(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}

// validCPF checks an 11-digit CPF's two check digits.
func validCPF(d string) bool {
	if len(d) != 11 || !allDigits(d) || allSame(d) {
		return false
	}
	check := func(n int) byte {
		sum := 0
		for i := 0; i < n; i++ {
			sum += int(d[i]-'0') * (n + 1 - i)
		}
		r := sum * 10 % 11
		if r == 10 {
			r = 0
		}
		return byte('0' + r)
	}
	return check(9) == d[9] && check(10) == d[10]
}

var (
	cnpjWeights1 = []int{5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	cnpjWeights2 = []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
)

// validCNPJ checks a CNPJ's two check digits: 14 digits, or the
// alphanumeric CNPJ issued since July 2026 (12 characters 0-9 A-Z, then two
// digits). Each character counts as its ASCII code minus 48, so a digit is
// its own value and 'A' is 17: the same arithmetic covers both forms.
func validCNPJ(d string) bool {
	if len(d) != 14 || !allDigits(d[12:]) || allSame(d) {
		return false
	}
	for i := 0; i < 12; i++ {
		if !isDigit(d[i]) && (d[i] < 'A' || d[i] > 'Z') {
			return false
		}
	}
	check := func(weights []int) byte {
		sum := 0
		for i, w := range weights {
			sum += int(d[i]-'0') * w
		}
		r := sum % 11
		if r < 2 {
			return '0'
		}
		return byte('0' + 11 - r)
	}
	return check(cnpjWeights1) == d[12] && check(cnpjWeights2) == d[13]
}

// validEmail checks an address's shape: one '@', a local part of the
// characters RFC 5322 allows unquoted, and a domain of at least two labels
// ending in a letters-only top-level domain. It cannot say whether the
// mailbox exists; it catches the typos a merchant can fix.
func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return false
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+/=?^_`{|}~.-", rune(c)) {
			return false
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 || len(domain) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if isDigit(tld[i]) || tld[i] == '-' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// ibgeStates are the two-digit state (UF) codes an IBGE municipality code
// starts with.
var ibgeStates = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true, "16": true, "17": true,
	"21": true, "22": true, "23": true, "24": true, "25": true, "26": true, "27": true, "28": true, "29": true,
	"31": true, "32": true, "33": true, "35": true,
	"41": true, "42": true, "43": true,
	"50": true, "51": true, "52": true, "53": true,
}

// validIBGE checks a 7-digit municipality code that starts with a state's.
func validIBGE(s string) bool {
	return len(s) == 7 && allDigits(s) && ibgeStates[s[:2]]
}
