package hiper

// ValidID reports whether s is shaped as a Hiper id: a UUID in its
// 36-character 8-4-4-4-12 hex form, in either case (Hiper parses ids as
// .NET Guids).
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
