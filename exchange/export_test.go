package exchange

// SealTitleForTest signs an entry with s, so tests can forge a chain
// signed by another key.
func SealTitleForTest(s *Signer, e TitleEntry) TitleEntry {
	s.sealTitle(&e)
	return e
}

// CloneRecordForTest is what RecordCache hands out for a cached record.
func CloneRecordForTest(r Record) Record { return r.clone() }
