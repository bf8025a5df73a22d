package exchange

import "context"

// SealTitleForTest signs an entry with s, so tests can forge a chain
// signed by another key.
func SealTitleForTest(s *Signer, e TitleEntry) TitleEntry {
	s.sealTitle(&e)
	return e
}

// CloneRecordForTest is what RecordCache hands out for a cached record.
func CloneRecordForTest(r Record) Record { return r.clone() }

// ForgetColdRecordsForTest empties the records read from the archive and
// bounds the reads running at once to inFlight.
func (s *Service) ForgetColdRecordsForTest(inFlight int) { s.cold = newColdRecords(inFlight) }

// RecordForTest is how views read a record: from the index, else the archive.
func (s *Service) RecordForTest(ctx context.Context, id string) (Record, error) {
	return s.record(ctx, id)
}

// ReleaseTimeout bounds releasing a refused submission's claims.
const ReleaseTimeout = releaseTimeout
