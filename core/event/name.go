package event

// PlainName reports whether s has only letters, digits, '-' and '_': the
// bytes a runner name may have, and those of an event id or a status that
// JSON writes as they are.
func PlainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
