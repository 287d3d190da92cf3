"""Write-back: scores and stages back to the CRMs, and every SQL handed off as a deal with an owner."""
