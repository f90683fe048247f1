/**
 * The group contrastive loss (NT-Xent, SupCon, multi-view) now lives beside the contrastive attack
 * objectives built on it, in src/attacks/contrastive.ts; re-exported here for existing imports.
 */
export { groupContrastivePerAnchor, contrastivePerImage, contrastiveGroups } from '../attacks/contrastive.js';
