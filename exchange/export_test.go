package exchange

// SealTitleForTest signs an entry with s, so tests can forge a chain
// signed by another key.
func SealTitleForTest(s *Signer, e TitleEntry) TitleEntry {
	s.sealTitle(&e)
	return e
}
