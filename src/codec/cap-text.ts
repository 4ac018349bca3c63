/** `text` cut to `max` characters, with an ellipsis when cut (for details in logs and dead-letter headers). */
export function capText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
