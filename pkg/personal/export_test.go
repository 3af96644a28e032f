package personal

// PlaceWord reports whether w, in any case and accents, is a word any
// address has (placeWords): the fuzz test's notes may keep it.
func PlaceWord(w string) bool { return placeWords[string(foldString(w))] }
