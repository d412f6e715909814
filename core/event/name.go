package event

// NameByte reports whether c is a letter, a digit, '-' or '_': the bytes a
// runner name may have, and those of an event id or a status that JSON
// writes as they are.
func NameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
