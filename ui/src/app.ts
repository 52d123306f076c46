import { type Api, ApiError } from "./api";

/** What every view gets: the API client and a way to redraw the current route. */
export interface App {
  api: Api;
  base: string;
  canSignOut: boolean;
  rerender: () => Promise<void>;
  /** Announces a short status text to screen readers (and shows it). */
  status: (text: string) => void;
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (HTTP ${error.status})`;
  return error instanceof Error ? error.message : String(error);
}

export const hashOf = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join("/")}`;
