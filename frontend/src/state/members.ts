// A member as the page shows it.
import type { Member } from './types';

/** Whose device it is, when the device says (`person`, not blank); null otherwise. */
export function personOf(member: Member | undefined): string | null {
  return member?.person?.trim() || null;
}
