/** Limits the raw front door (socket-guard.ts) checks before any framework module is loaded (service.ts takes the port first). */

/** The longest request target served (longer: 414 URI_TOO_LONG). */
export const MAX_URL_LENGTH = 8192;
