"""Document digitization for scanned bank statements: the pipeline's stages as library code.

Among them: Textract blocks -> tables (``reshape``), business rules and reviewer corrections (``rules``), and the
Excel workbook per document (``catalog``). They take and return plain dicts and lists, so stage outputs travel
through XCom and S3 as JSON.
"""
