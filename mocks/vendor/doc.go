// Package vendor is a mock service provider, a model-API vendor in the manner of the ones
// whose keys agents keep in their vaults: an agent signs up with its own email address,
// receives a verification link in its mailbox, and gets an API key by visiting it.
//
// The key reaches only whoever holds the link: the answer of the link itself carries it,
// the mail never does. So a sign-up with someone else's address changes nothing until the
// owner of that mailbox visits the link, and the owner's key keeps working. Confirming a
// new sign-up for an email issues a new key and revokes the old one, which is how an agent
// rotates its credential. GET /v1/whoami with the key as a bearer names its email.
//
// The vendor keeps only SHA-256 hashes of the keys it issued, as a real one should. It
// sends mail over SMTP through mocks/mailer; without an SMTP address its sign-up answers
// 503 email_unavailable and the rest of it works as before.
package vendor
