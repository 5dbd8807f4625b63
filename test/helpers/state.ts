/** A LabMeta for state tests; `extra` overrides any field. */
import type { LabMeta } from '../../src/state/state.js';

export const labMeta = (id: string, extra: Partial<LabMeta> = {}): LabMeta => ({
  id,
  prefix: `tlab-${id}`,
  lab: 'smb',
  labFile: '/x/labs/smb.yaml',
  provider: 'sim',
  createdAt: new Date().toISOString(),
  ownerPid: process.pid,
  status: 'starting',
  ...extra,
});
