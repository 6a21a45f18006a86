import type { ComponentChildren } from 'preact'

/**
 * A table that may be wider than the screen (390 px phones) scrolls inside this box instead of
 * widening the page. The box is focusable and named, so keyboard users can scroll it too.
 */
export function TableScroll ({ label, children }: { label: string, children: ComponentChildren }) {
  return <div class='table-scroll' role='region' aria-label={label} tabIndex={0}>{children}</div>
}
