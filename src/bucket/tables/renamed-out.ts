/** The only SQL on `renamed_out`: rename attempts this object handed over, so a repeated hand-over is answered the same. */

export class RenamedOutTable {
  constructor(private readonly sql: SqlStorage) {}

  has(attempt: string): boolean {
    return this.sql.exec("SELECT 1 FROM renamed_out WHERE attempt = ?", attempt).toArray().length > 0;
  }

  insert(attempt: string, newName: string, atMs: number): void {
    this.sql.exec("INSERT INTO renamed_out (attempt, new_name, at_ms) VALUES (?, ?, ?)", attempt, newName, atMs);
  }
}
