import { useState } from 'preact/hooks'
import { readClaims } from '../api.ts'

export function SignIn ({ notice, onSignIn }: { notice: string | null, onSignIn: (token: string) => void }) {
  const [value, setValue] = useState('')
  const [error, setError] = useState<string | null>(null)
  const submit = (e: Event): void => {
    e.preventDefault()
    const token = value.trim().replace(/^Bearer\s+/i, '')
    if (readClaims(token) === null) {
      setError('This does not look like a tenant-enclave token: paste the JWT (three dot-separated parts) with a tenantId claim.')
      return
    }
    onSignIn(token)
  }
  return (
    <main id='main' class='sign-in'>
      <h1 tabIndex={-1}>Sign in to the tenant-enclave console</h1>
      {notice !== null && <p class='notice' role='status' data-testid='sign-in-notice'>{notice}</p>}
      <form onSubmit={submit} aria-describedby='token-help'>
        <label for='token'>Token</label>
        <textarea
          id='token' name='token' rows={5} spellcheck={false} autoComplete='off' required
          value={value} onInput={(e) => { setValue((e.target as HTMLTextAreaElement).value); setError(null) }}
        />
        <p id='token-help' class='help'>
          Paste a bearer token (JWT). On an embedded start, <code>npm start</code> prints one per demo tenant and one for admin.
          The token stays in this tab only (sessionStorage) and is sent only in the <code>Authorization</code> header.
        </p>
        {error !== null && <p class='error' role='alert'>{error}</p>}
        <button type='submit'>Sign in</button>
      </form>
    </main>
  )
}
