"""Media Server's own example answers, as its documentation prints them (MS), for tests."""

# The ListImageHashes page's example response (seeds/ListImageHashes.txt), with one entry.
LIST_IMAGE_HASHES_SEED = """<autnresponse>
  <action>LISTIMAGEHASHES</action>
  <response>SUCCESS</response>
  <responsedata>
    <entry>
      <identifier>6d8e53fd92e601a4b8948e1b9397e381</identifier>
      <numimages>1</numimages>
      <numtrained>1</numtrained>
      <numfailed>0</numfailed>
      <numuntrained>0</numuntrained>
      <images>
        <image>
          <label>image1</label>
          <status>trained</status>
          <hasimagedata>true</hasimagedata>
        </image>
      </images>
      <metadata>
        <item>
          <key>importance</key>
          <value>high</value>
        </item>
      </metadata>
    </entry>
  </responsedata>
</autnresponse>"""
