package webhook

import "context"

// RoundForTest runs one round with the subscriptions read afresh and
// returns once every inbox it drains is done.
func (p *Pusher) RoundForTest(ctx context.Context) {
	p.Refresh()
	p.Round(ctx)
	p.running.Wait()
}
