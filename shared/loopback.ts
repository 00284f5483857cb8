/**
 * What counts as loopback, for HOST (where an open API may listen) and for the
 * Host and Origin headers an open API accepts: the word `localhost`, an IPv4
 * literal in 127.0.0.0/8, or the IPv6 literal ::1 (bare or in brackets).
 * Names that merely start with `127.` (`127.attacker.example`) are not.
 */
import { isIP } from 'node:net';

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(bare) === 4) return bare.split('.')[0] === '127';
  if (isIP(bare) === 6) return /^(0{0,4}:){2,7}0{0,3}1$/.test(bare) || bare === '::1';
  return false;
}
